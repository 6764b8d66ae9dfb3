//! The forum's load generator, for any backend: clients that each run the
//! usual forum mix (mostly reads of thread pages and community listings, some
//! comments, few new threads) for a while, and the report they make. The
//! lambda-object backend is in `backend.rs`; the benchmark adds Redis and
//! PostgreSQL ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One client's connection to a forum backend. Keys are the objects' keys;
/// an error is the backend's message (a failed operation is counted, not
/// retried: backends retry conflicts themselves).
pub trait Session {
    /// Creates an account.
    fn create_account(&mut self, account: &str, name: &str) -> Result<(), String>;
    /// Creates a community.
    fn create_community(&mut self, community: &str, name: &str) -> Result<(), String>;
    /// `account` starts thread `thread` in `community`.
    fn create_thread(
        &mut self,
        account: &str,
        community: &str,
        thread: &str,
        title: &str,
        text: &str,
    ) -> Result<(), String>;
    /// `account` comments on `thread`; the comment's number.
    fn comment(&mut self, account: &str, thread: &str, text: &str) -> Result<u32, String>;
    /// Reads comments `from..from + n` of `thread` with its title; how many
    /// comments the page had.
    fn page(&mut self, thread: &str, from: u32, n: u32) -> Result<usize, String>;
    /// The newest `n` threads of `community`; how many there were.
    fn listing(&mut self, community: &str, n: u64) -> Result<usize, String>;
}

/// A forum backend: where sessions come from, and how many times it retried
/// a transaction after a conflict so far.
pub trait Backend: Sync {
    /// A new client connection.
    fn session(&self) -> Result<Box<dyn Session>, String>;
    /// Transactions re-executed after a conflict, since the backend started.
    fn retries(&self) -> u64;
}

/// What each operation's share of the mix is, in percent (they add to 100).
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Thread pages (10 comments).
    pub page: u32,
    /// Community listings (the newest 10 threads).
    pub listing: u32,
    /// New comments.
    pub comment: u32,
    /// New threads.
    pub thread: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            page: 60,
            listing: 25,
            comment: 12,
            thread: 3,
        }
    }
}

/// The load's shape.
#[derive(Debug, Clone)]
pub struct Load {
    /// Concurrent clients.
    pub clients: usize,
    /// How long they run.
    pub duration: Duration,
    /// Accounts created first.
    pub accounts: usize,
    /// Communities created first.
    pub communities: usize,
    /// Threads created first.
    pub threads: usize,
    /// The mix.
    pub mix: Mix,
    /// Key skew: 1 picks objects uniformly; above 1, object `i` of `n` is
    /// picked as `n * u^skew` for a uniform `u`, so low numbers are hot
    /// (skew 4: a quarter of the picks go to the first 0.4 % of objects).
    pub skew: f64,
    /// Seeds the clients' random choices.
    pub seed: u64,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            clients: 8,
            duration: Duration::from_secs(3),
            accounts: 200,
            communities: 10,
            threads: 200,
            mix: Mix::default(),
            skew: 1.0,
            seed: 1,
        }
    }
}

/// The operations of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A thread page.
    Page,
    /// A community listing.
    Listing,
    /// A new comment.
    Comment,
    /// A new thread.
    Thread,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 4] = [Op::Page, Op::Listing, Op::Comment, Op::Thread];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Page => "thread page",
            Op::Listing => "community listing",
            Op::Comment => "new comment",
            Op::Thread => "new thread",
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per operation: latencies of the successful ones (sorted).
    pub latencies: Vec<(Op, Vec<Duration>)>,
    /// Operations that failed, per operation.
    pub failures: Vec<(Op, u64)>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Transactions the backend re-executed after conflicts during the run.
    pub retries: u64,
    /// Every account, community and thread key, for checks afterwards.
    pub keys: Keys,
}

/// The keys of a run's objects.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// Accounts.
    pub accounts: Vec<String>,
    /// Communities.
    pub communities: Vec<String>,
    /// Threads (the first ones and those the run created).
    pub threads: Vec<String>,
}

impl Report {
    /// Successful operations.
    pub fn committed(&self) -> usize {
        self.latencies.iter().map(|(_, l)| l.len()).sum()
    }

    /// Successful operations per second.
    pub fn per_second(&self) -> f64 {
        self.committed() as f64 / self.elapsed.as_secs_f64()
    }

    /// Every latency, sorted.
    pub fn all(&self) -> Vec<Duration> {
        let mut all: Vec<Duration> = self.latencies.iter().flat_map(|(_, l)| l.clone()).collect();
        all.sort_unstable();
        all
    }

    /// Re-executions per successful write (new comments and threads).
    pub fn retry_rate(&self) -> f64 {
        let writes: usize = self
            .latencies
            .iter()
            .filter(|(op, _)| matches!(op, Op::Comment | Op::Thread))
            .map(|(_, l)| l.len())
            .sum();
        if writes == 0 {
            0.0
        } else {
            self.retries as f64 / writes as f64
        }
    }

    /// The report as a table (operation, count, per second, p50, p99 in µs).
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<18} {:>9} {:>10} {:>9} {:>9} {:>7}\n",
            "operation", "count", "per s", "p50 us", "p99 us", "failed"
        );
        let secs = self.elapsed.as_secs_f64();
        for (op, latencies) in &self.latencies {
            let failed = self
                .failures
                .iter()
                .find(|(o, _)| o == op)
                .map_or(0, |(_, n)| *n);
            out += &format!(
                "{:<18} {:>9} {:>10.0} {:>9.0} {:>9.0} {:>7}\n",
                op.name(),
                latencies.len(),
                latencies.len() as f64 / secs,
                percentile(latencies, 0.50),
                percentile(latencies, 0.99),
                failed
            );
        }
        let all = self.all();
        out += &format!(
            "{:<18} {:>9} {:>10.0} {:>9.0} {:>9.0} {:>7}\n",
            "all",
            all.len(),
            self.per_second(),
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            self.failures.iter().map(|(_, n)| n).sum::<u64>()
        );
        out += &format!(
            "re-executions after conflicts: {} ({:.3} per write)\n",
            self.retries,
            self.retry_rate()
        );
        out
    }
}

/// The `p`-th percentile of sorted `latencies`, in microseconds.
pub fn percentile(latencies: &[Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
    latencies[index].as_secs_f64() * 1e6
}

/// A small, fast random source (xorshift64*), one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One of `n` objects, skewed by `skew`.
    fn pick(&mut self, n: usize, skew: f64) -> usize {
        ((n as f64 * self.unit().powf(skew)) as usize).min(n.saturating_sub(1))
    }
}

/// Creates the forum's first objects with `load.clients` sessions at once.
pub fn populate(backend: &dyn Backend, load: &Load) -> Result<Keys, String> {
    let keys = Keys {
        accounts: (0..load.accounts).map(|i| format!("account-{i}")).collect(),
        communities: (0..load.communities)
            .map(|i| format!("community-{i}"))
            .collect(),
        threads: (0..load.threads).map(|i| format!("thread-{i}")).collect(),
    };
    let clients = load.clients.max(1);
    std::thread::scope(|scope| -> Result<(), String> {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let keys = &keys;
                scope.spawn(move || -> Result<(), String> {
                    let mut session = backend.session()?;
                    for (i, a) in keys.accounts.iter().enumerate().skip(c).step_by(clients) {
                        session.create_account(a, &format!("user {i}"))?;
                    }
                    for (i, m) in keys.communities.iter().enumerate().skip(c).step_by(clients) {
                        session.create_community(m, &format!("community {i}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| "a populating client panicked".to_string())??;
        }
        // Threads need their accounts and communities.
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let keys = &keys;
                scope.spawn(move || -> Result<(), String> {
                    let mut session = backend.session()?;
                    for (i, t) in keys.threads.iter().enumerate().skip(c).step_by(clients) {
                        let account = &keys.accounts[i % keys.accounts.len()];
                        let community = &keys.communities[i % keys.communities.len()];
                        session.create_thread(
                            account,
                            community,
                            t,
                            &format!("thread {i}"),
                            "first post",
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| "a populating client panicked".to_string())??;
        }
        Ok(())
    })?;
    Ok(keys)
}

/// Numbers the runs of this process, so that threads created by one run
/// never take the keys of another's.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs the mix on a populated forum and reports it.
pub fn run(backend: &dyn Backend, load: &Load, keys: Keys) -> Result<Report, String> {
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let threads = Arc::new(RwLock::new(keys.threads.clone()));
    let retries_before = backend.retries();
    let start = Instant::now();
    let deadline = start + load.duration;
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..load.clients.max(1))
            .map(|c| {
                let (threads, keys) = (Arc::clone(&threads), &keys);
                scope.spawn(move || client(backend, load, keys, &threads, (run, c), deadline))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a client panicked".into())))
            .collect::<Vec<_>>()
    });
    let elapsed = start.elapsed();
    let mut latencies: Vec<(Op, Vec<Duration>)> =
        Op::ALL.iter().map(|&op| (op, Vec::new())).collect();
    let mut failures: Vec<(Op, u64)> = Op::ALL.iter().map(|&op| (op, 0)).collect();
    for result in results {
        let (mine, failed) = result?;
        for (op, l) in mine {
            latencies
                .iter_mut()
                .find(|(o, _)| *o == op)
                .expect("every op")
                .1
                .extend(l);
        }
        for (op, n) in failed {
            failures
                .iter_mut()
                .find(|(o, _)| *o == op)
                .expect("every op")
                .1 += n;
        }
    }
    for (_, l) in &mut latencies {
        l.sort_unstable();
    }
    let threads = threads.read().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Report {
        latencies,
        failures,
        elapsed,
        retries: backend.retries().saturating_sub(retries_before),
        keys: Keys { threads, ..keys },
    })
}

type ClientResult = Result<(Vec<(Op, Vec<Duration>)>, Vec<(Op, u64)>), String>;

/// One client: the mix until `deadline`.
fn client(
    backend: &dyn Backend,
    load: &Load,
    keys: &Keys,
    threads: &RwLock<Vec<String>>,
    (run, c): (u64, usize),
    deadline: Instant,
) -> ClientResult {
    let mut session = backend.session()?;
    let mut rng = Rng(load.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (c as u64 + 1) << 17 | 1);
    let mut latencies: Vec<(Op, Vec<Duration>)> =
        Op::ALL.iter().map(|&op| (op, Vec::new())).collect();
    let mut failures: Vec<(Op, u64)> = Op::ALL.iter().map(|&op| (op, 0)).collect();
    let mix = load.mix;
    let mut created = 0u64;
    while Instant::now() < deadline {
        let roll = (rng.next() % 100) as u32;
        let op = if roll < mix.page {
            Op::Page
        } else if roll < mix.page + mix.listing {
            Op::Listing
        } else if roll < mix.page + mix.listing + mix.comment {
            Op::Comment
        } else {
            Op::Thread
        };
        let account = &keys.accounts[rng.pick(keys.accounts.len(), load.skew)];
        let community = &keys.communities[rng.pick(keys.communities.len(), load.skew)];
        let thread = {
            let threads = threads.read().unwrap_or_else(|e| e.into_inner());
            threads[rng.pick(threads.len(), load.skew)].clone()
        };
        let start = Instant::now();
        let result = match op {
            Op::Page => session.page(&thread, 1, 10).map(drop),
            Op::Listing => session.listing(community, 10).map(drop),
            Op::Comment => session
                .comment(account, &thread, "a comment of the load generator")
                .map(drop),
            Op::Thread => {
                created += 1;
                let key = format!("thread-r{run}-c{c}-{created}");
                let done = session.create_thread(
                    account,
                    community,
                    &key,
                    "a new thread",
                    "its first post",
                );
                if done.is_ok() {
                    threads.write().unwrap_or_else(|e| e.into_inner()).push(key);
                }
                done
            }
        };
        let elapsed = start.elapsed();
        let slot = Op::ALL.iter().position(|&o| o == op).expect("every op");
        match result {
            Ok(()) => latencies[slot].1.push(elapsed),
            Err(_) => failures[slot].1 += 1,
        }
    }
    Ok((latencies, failures))
}
