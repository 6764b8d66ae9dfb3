//! `microblog`: users follow users and post; every post fans out to its
//! author's followers concurrently, in one transaction. Runs a mix of
//! timeline reads, posts and follows, then checks that every post reached
//! each follower exactly once. Embedded default with no setup, or
//! `CRUCIAL_SERVER=host:port` of `microblog-server` nodes.

use clap::Parser;
use crucial::{Client, ObjectId};
use microblog::{Post, User};
use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "LambdaStore's microblog on lambda objects: posts fan out to followers concurrently"
)]
struct Args {
    /// Users.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Users each one follows at the start.
    #[arg(long, default_value_t = 10)]
    follows: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Percent of operations that post (the rest: 5 % follows, timeline reads).
    #[arg(long, default_value_t = 15)]
    posts: u64,
}

const OPS: [&str; 3] = ["timeline read", "post", "follow"];

fn main() -> ExitCode {
    microblog::link();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn user(client: &Client, i: usize) -> microblog::UserRef {
    User::at(format!("user-{i}")).with_client(client.clone())
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let client = crucial::Context::global()?.client().clone();
    let users = args.users.max(2);
    let start = Instant::now();
    for i in 0..users {
        user(&client, i).create(format!("user {i}"))?;
    }
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for i in 0..users {
        for _ in 0..args.follows.min(users - 1) {
            let other = user(&client, rng.next() as usize % users).id().clone();
            user(&client, i).follow(other)?;
        }
    }
    println!(
        "microblog: {users} users following up to {} others each, set up in {:.2} s",
        args.follows,
        start.elapsed().as_secs_f64()
    );

    let posts = Mutex::new(Vec::<ObjectId>::new());
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.clients.max(1))
            .map(|c| {
                let (client, posts) = (client.clone(), &posts);
                scope.spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((c as u64 + 1) << 20));
                    let mut latencies: [Vec<Duration>; 3] = Default::default();
                    let mut failed = [0u64; 3];
                    let mut fanout = 0u64;
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let me = user(&client, rng.next() as usize % users);
                        let roll = rng.next() % 100;
                        let t = Instant::now();
                        let (op, done) = if roll < args.posts {
                            n += 1;
                            let key = format!("post-c{c}-{n}");
                            let done = me.post(key.clone(), format!("post {n} of client {c}"));
                            if let Ok(reached) = &done {
                                fanout += u64::from(*reached);
                                posts
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(Post::at(key).id().clone());
                            }
                            (1, done.map(drop))
                        } else if roll < args.posts + 5 {
                            let other = user(&client, rng.next() as usize % users).id().clone();
                            (2, me.follow(other).map(drop))
                        } else {
                            (0, me.timeline(10).map(drop))
                        };
                        match done {
                            Ok(()) => latencies[op].push(t.elapsed()),
                            Err(_) => failed[op] += 1,
                        }
                    }
                    (latencies, failed, fanout)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a client thread"))
            .collect::<Vec<_>>()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: [Vec<Duration>; 3] = Default::default();
    let (mut failed, mut fanout) = ([0u64; 3], 0);
    for (l, f, o) in results {
        for op in 0..3 {
            latencies[op].extend(&l[op]);
            failed[op] += f[op];
        }
        fanout += o;
    }
    println!(
        "{} clients, {elapsed:.1} s, {} % posts, 5 % follows, the rest timeline reads",
        args.clients, args.posts
    );
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "operation", "count", "per s", "p50 us", "p99 us", "failed"
    );
    let mut all = Vec::new();
    for op in 0..3 {
        latencies[op].sort_unstable();
        let l = &latencies[op];
        println!(
            "{:<14} {:>9} {:>9.0} {:>9.0} {:>9.0} {:>7}",
            OPS[op],
            l.len(),
            l.len() as f64 / elapsed,
            percentile(l, 0.5),
            percentile(l, 0.99),
            failed[op]
        );
        all.extend(l);
    }
    all.sort_unstable();
    println!(
        "{:<14} {:>9} {:>9.0} {:>9.0} {:>9.0} {:>7}",
        "all",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        failed.iter().sum::<u64>()
    );
    let stats = client.workflow_stats()?;
    println!(
        "posts reached {:.1} followers on average; re-executions after conflicts: {}",
        fanout as f64 / latencies[1].len().max(1) as f64,
        stats
            .executions
            .saturating_sub(stats.committed + stats.given_up)
    );
    check(
        &client,
        users,
        &posts.into_inner().unwrap_or_else(|e| e.into_inner()),
    )?;
    println!("server: {}", client.servers().join(","));
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6
}

/// Every timeline entry is by someone its owner follows, every timeline's
/// counter equals its entries, no post reached one timeline twice, and the
/// deliveries the timelines hold are exactly those the posts made.
fn check(client: &Client, users: usize, posts: &[ObjectId]) -> Result<(), String> {
    let fail = |e: crucial::Error| e.to_string();
    let mut held = 0u64;
    for i in 0..users {
        let (following, len, entries) = user(client, i).audit().map_err(fail)?;
        if len != entries.len() as u64 {
            return Err(format!(
                "user-{i}: counter {len}, {} entries",
                entries.len()
            ));
        }
        let following: HashSet<ObjectId> = following.into_iter().collect();
        let mut seen = HashSet::new();
        for e in &entries {
            if !following.contains(&e.author) {
                return Err(format!(
                    "user-{i} holds {} by {}, whom it does not follow",
                    e.post, e.author
                ));
            }
            if !seen.insert(e.post.clone()) {
                return Err(format!("user-{i} got {} twice", e.post));
            }
        }
        held += len;
    }
    let mut made = 0u64;
    for post in posts {
        let (_, delivered) = Post::at(post)
            .with_client(client.clone())
            .delivery()
            .map_err(fail)?;
        made += u64::from(delivered);
    }
    if held != made {
        return Err(format!(
            "posts made {made} deliveries, timelines hold {held}"
        ));
    }
    println!(
        "invariants hold: {} posts, {made} deliveries, each in its follower's timeline once",
        posts.len()
    );
    Ok(())
}
