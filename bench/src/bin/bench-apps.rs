//! `bench-apps`: the paper's applications on Crucial against plain threads, in
//! one run: k-means and logistic-regression iteration times with 1 and 2
//! threads, and the Santa Claus overheads of variants 2 and 3 over variant 1.
//!
//! Crucial runs on the embedded default here (node in process, local threads);
//! the node is a real loopback server, every call crosses the wire.
//!
//! Usage: `bench-apps [--quick]`

use std::time::Instant;

fn kmeans_rows(quick: bool) {
    let args: Vec<String> = if quick {
        ["--points", "20000", "--dims", "20", "--iterations", "5"]
            .map(String::from)
            .to_vec()
    } else {
        Vec::new() // the size: 200k x 100, k = 25, 10 iterations
    };
    let (base, _) = kmeans::parse_args(args.into_iter()).expect("args");
    println!(
        "## k-means, {} points x {} dims, k = {}, {} iterations",
        base.shape.points, base.shape.dims, base.k, base.iterations
    );
    println!();
    println!(
        "| threads | crucial (ms/iteration) | std threads (ms/iteration) | ratio | same cost |"
    );
    println!("|---|---|---|---|---|");
    for threads in [1, 2] {
        let params = kmeans::Params {
            threads,
            run: format!("bench/kmeans/{threads}"),
            ..base.clone()
        };
        let start = Instant::now();
        let (ours, _) = kmeans::run_crucial(&params).expect("crucial k-means");
        let ours_t = start.elapsed().as_secs_f64() / f64::from(params.iterations);
        let start = Instant::now();
        let (theirs, _) = kmeans::run_std(&params);
        let theirs_t = start.elapsed().as_secs_f64() / f64::from(params.iterations);
        println!(
            "| {threads} | {:.1} | {:.1} | {:.3} | {} |",
            ours_t * 1e3,
            theirs_t * 1e3,
            ours_t / theirs_t,
            ours.last().map(|h| h.0) == theirs.last().map(|h| h.0)
        );
    }
    println!();
}

fn logreg_rows(quick: bool) {
    let args: Vec<String> = if quick {
        ["--points", "5000", "--iterations", "20"]
            .map(String::from)
            .to_vec()
    } else {
        Vec::new() // 100k x 50, 100 iterations
    };
    let (base, _) = logreg::parse_args(args.into_iter()).expect("args");
    println!(
        "## logistic regression, {} points x {} features, {} iterations",
        base.data.points, base.data.dims, base.iterations
    );
    println!();
    println!(
        "| threads | crucial (ms/iteration) | std threads (ms/iteration) | ratio | same loss |"
    );
    println!("|---|---|---|---|---|");
    for threads in [1, 2] {
        let params = logreg::Params {
            threads,
            run: format!("bench/logreg/{threads}"),
            ..base.clone()
        };
        let start = Instant::now();
        let (ours, _) = logreg::run_crucial(&params).expect("crucial logreg");
        let ours_t = start.elapsed().as_secs_f64() / f64::from(params.iterations);
        let start = Instant::now();
        let (theirs, _) = logreg::run_std(&params);
        let theirs_t = start.elapsed().as_secs_f64() / f64::from(params.iterations);
        println!(
            "| {threads} | {:.2} | {:.2} | {:.3} | {} |",
            ours_t * 1e3,
            theirs_t * 1e3,
            ours_t / theirs_t,
            ours.last().map(|h| h.0) == theirs.last().map(|h| h.0)
        );
    }
    println!();
}

fn santa_rows(quick: bool) {
    let runs = if quick { 1 } else { 5 };
    let mut config = santa::Config {
        deliveries: 15,
        elves: 10,
        pace_micros: 2000,
        seed: 7,
        run: String::new(),
    };
    println!(
        "## Santa Claus, 10 elves, 9 reindeer, 15 deliveries, pace {} us, mean of {runs} runs",
        config.pace_micros
    );
    println!();
    println!("| variant | mean time (ms) | overhead vs variant 1 |");
    println!("|---|---|---|");
    let mut base = None;
    for (variant, name) in [
        (1, "1: threads, std monitor"),
        (2, "2: threads, shared objects"),
        (3, "3: cloud threads, shared objects"),
    ] {
        let mut total = 0.0;
        for r in 0..runs {
            config.run = format!("bench/santa/{variant}/{r}");
            let start = Instant::now();
            let jobs = santa::run(variant, &config).expect("santa");
            total += start.elapsed().as_secs_f64();
            santa::check(&jobs, &config).expect("invariants");
        }
        let mean = total / f64::from(runs);
        let b = *base.get_or_insert(mean);
        println!(
            "| {name} | {:.1} | {:+.1} % |",
            mean * 1e3,
            (mean / b - 1.0) * 100.0
        );
    }
    println!();
}

fn main() {
    kmeans::link();
    logreg::link();
    santa::link();
    let quick = std::env::args().any(|a| a == "--quick");
    println!(
        "# applications: Crucial (embedded node, local cloud threads) vs plain threads; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    kmeans_rows(quick);
    logreg_rows(quick);
    santa_rows(quick);
}
