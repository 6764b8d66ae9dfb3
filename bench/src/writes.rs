//! Writes to measure, the same on every system: a counter increment and a
//! 1 KiB set, run by one caller (latencies) or many (throughput); and the
//! Redis peers of durability and replication (an append-only file; one
//! replica, with or without `WAIT 1 0`).

use crate::stats::{Latencies, Throughput};
use crate::systems::Redis;
use crucial::Bytes;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One system under test.
pub trait Durable: Sync {
    /// Increments the counter `key`.
    fn incr(&self, key: &str);
    /// Sets `key` to `value`.
    fn set(&self, key: &str, value: &Bytes);
}

/// Redis (with whatever persistence it was started with).
pub struct RedisAof(pub Redis);

thread_local! {
    static CONNECTION: std::cell::RefCell<Option<(String, redis::Connection)>> =
        const { std::cell::RefCell::new(None) };
}

impl RedisAof {
    fn with<T>(&self, f: impl FnOnce(&mut redis::Connection) -> T) -> T {
        CONNECTION.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.as_ref().is_none_or(|(addr, _)| *addr != self.0.addr) {
                *slot = Some((self.0.addr.clone(), self.0.connect()));
            }
            f(&mut slot.as_mut().expect("connection").1)
        })
    }
}

impl Durable for RedisAof {
    fn incr(&self, key: &str) {
        self.with(|c| redis::cmd("INCR").arg(key).query::<i64>(c).expect("INCR"));
    }

    fn set(&self, key: &str, value: &Bytes) {
        self.with(|c| {
            redis::cmd("SET")
                .arg(key)
                .arg(value.as_ref())
                .query::<()>(c)
                .expect("SET")
        });
    }
}

/// Redis with one replica (`--replicaof`), no append-only file: the copy on
/// a second server is the durability. With `wait`, every write is sent with
/// `WAIT 1 0` in the same round trip (acknowledged once the replica has it),
/// the best case for a Redis client; without, the replica lags behind.
pub struct RedisReplicated {
    primary: RedisAof,
    _replica: Redis,
    wait: bool,
}

impl RedisReplicated {
    /// Starts both servers; the snapshots of the replica's first sync go to
    /// `dir` (not the working directory).
    pub fn start(wait: bool, dir: &Path) -> Result<RedisReplicated, String> {
        let made = |name: &str| -> Result<String, String> {
            let path = dir.join(name);
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
            path.to_str()
                .map(str::to_owned)
                .ok_or("a UTF-8 path".into())
        };
        let (primary_dir, replica_dir) = (made("primary")?, made("replica")?);
        let primary = Redis::start_with(&["--dir", &primary_dir])?;
        let (host, port) = primary.addr.rsplit_once(':').ok_or("an address")?;
        let replica = Redis::start_with(&["--replicaof", host, port, "--dir", &replica_dir])?;
        let mut c = primary.connect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut c)
                .map_err(|e| e.to_string())?;
            if info.contains("connected_slaves:1") && info.contains("state=online") {
                break;
            }
            if Instant::now() > deadline {
                return Err("the replica did not come online in 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(RedisReplicated {
            primary: RedisAof(primary),
            _replica: replica,
            wait,
        })
    }

    fn write(&self, command: redis::Cmd) {
        self.primary.with(|c| {
            if self.wait {
                let (_, replicas): (redis::Value, i64) = redis::pipe()
                    .add_command(command)
                    .cmd("WAIT")
                    .arg(1)
                    .arg(0)
                    .query(c)
                    .expect("write + WAIT");
                assert_eq!(replicas, 1, "WAIT 1 0 returns once the replica has it");
            } else {
                command.query::<redis::Value>(c).expect("write");
            }
        });
    }
}

impl Durable for RedisReplicated {
    fn incr(&self, key: &str) {
        let mut command = redis::cmd("INCR");
        command.arg(key);
        self.write(command);
    }

    fn set(&self, key: &str, value: &Bytes) {
        let mut command = redis::cmd("SET");
        command.arg(key).arg(value.as_ref());
        self.write(command);
    }
}

/// `ops` calls of `op` one after another (after a tenth as warm-up).
pub fn sequential(system: &dyn Durable, ops: usize, op: &dyn Fn(&dyn Durable)) -> Latencies {
    for _ in 0..ops / 10 {
        op(system);
    }
    let mut times = Vec::with_capacity(ops);
    for _ in 0..ops {
        let start = Instant::now();
        op(system);
        times.push(start.elapsed());
    }
    Latencies::new(times)
}

/// `callers` threads calling `op` for `duration`.
pub fn concurrent(
    system: &dyn Durable,
    callers: usize,
    duration: Duration,
    op: &(dyn Fn(&dyn Durable) + Sync),
) -> Throughput {
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..callers {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    op(system);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    Throughput {
        ops: done.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}
