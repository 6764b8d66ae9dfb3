//! `bench-barrier`: time of one barrier round with 2..64 parties, Crucial's
//! `Barrier` (waiters parked on the node) against a polling barrier on Redis
//! (`INCR` the round's counter, then `GET` it until it reaches the parties),
//! measured in the same run.
//!
//! Usage: `bench-barrier [--rounds N] [--parties 2,4,8,16,32,64]`

use crucial::Barrier;
use crucial_bench::systems::{Crucial, Redis};
use std::sync::Arc;
use std::time::Instant;

fn crucial_round(node: &Crucial, parties: usize, rounds: usize) -> f64 {
    let key = format!("bench/barrier/{parties}");
    node.client
        .create(&key, &Barrier::new(parties as u32))
        .expect("create barrier");
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..parties {
            let barrier = node.client.open::<Barrier>(key.clone());
            s.spawn(move || {
                for _ in 0..rounds {
                    barrier.wait().expect("wait");
                }
            });
        }
    });
    start.elapsed().as_secs_f64() / rounds as f64
}

fn redis_round(redis: &Arc<Redis>, parties: usize, rounds: usize) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..parties {
            let mut con = redis.connect();
            s.spawn(move || {
                for round in 0..rounds {
                    let key = format!("bench/barrier/{parties}/{round}");
                    redis::cmd("INCR")
                        .arg(&key)
                        .query::<i64>(&mut con)
                        .expect("INCR");
                    loop {
                        let n: i64 = redis::cmd("GET").arg(&key).query(&mut con).expect("GET");
                        if n >= parties as i64 {
                            break;
                        }
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    start.elapsed().as_secs_f64() / rounds as f64
}

fn main() {
    if crucial_bench::serve_if_asked() {
        return;
    }
    let mut rounds = 100;
    let mut parties = vec![2, 4, 8, 16, 32, 64];
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--rounds", Some(v)) => rounds = v.parse().expect("--rounds N"),
            ("--parties", Some(v)) => {
                parties = v
                    .split(',')
                    .map(|p| p.parse().expect("--parties 2,4"))
                    .collect()
            }
            (other, _) => panic!("unknown option {other}"),
        }
    }
    println!(
        "# barrier round time, {rounds} rounds, one thread per party; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let node = Crucial::start("multi-thread");
    let redis = Redis::start().map(Arc::new);
    if let Err(e) = &redis {
        println!("# redis not measured: {e}");
    }
    println!();
    println!(
        "| parties | crucial Barrier (us/round) | redis polling (us/round) | ratio (ours/redis) |"
    );
    println!("|---|---|---|---|");
    for &p in &parties {
        let ours = crucial_round(&node, p, rounds);
        let theirs = redis.as_ref().ok().map(|r| redis_round(r, p, rounds));
        println!(
            "| {p} | {:.0} | {} | {} |",
            ours * 1e6,
            theirs.map_or("-".into(), |t| format!("{:.0}", t * 1e6)),
            theirs.map_or("-".into(), |t| format!("{:.2}", ours / t)),
        );
    }
    println!();
    println!("# crucial: waiters parked on the node, no polling; redis: INCR then GET until full (yield between polls)");
}
