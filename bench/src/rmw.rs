//! The read-modify-write microbenchmark: each transaction reads a counter
//! and writes it back plus one, on lambda objects (a function next to the
//! counter), on Redis (`WATCH`, `GET`, `MULTI`/`SET`/`EXEC` from the
//! client, re-run on conflict) and on PostgreSQL (a PL/pgSQL function in a
//! `SERIALIZABLE` transaction, re-run on serialization failure). After a run
//! the counters must add up to the increments acknowledged.

use crate::postgres::{is_retryable, Postgres};
use crucial::store::{Cell, TxError};
use crucial::Client;
use redis::Commands;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The counter of the microbenchmark, as a lambda object.
#[crucial::lambda_object(name = "crucial_bench::Counter")]
pub struct Counter {
    value: Cell<i64>,
}

#[crucial::lambda_object]
impl Counter {
    /// A counter at zero.
    #[constructor]
    pub fn create(&mut self) -> Result<(), TxError> {
        self.value.set(&0)
    }

    /// Reads the counter and writes it back plus `n`; the new value.
    pub fn add(&mut self, n: i64) -> Result<i64, TxError> {
        let value = self.value.get()?.unwrap_or(0) + n;
        self.value.set(&value)?;
        Ok(value)
    }

    /// The value.
    pub fn value(&self) -> Result<i64, TxError> {
        Ok(self.value.get()?.unwrap_or(0))
    }
}

/// A system the microbenchmark runs on.
pub trait Rmw: Sync {
    /// Creates counters `0..keys` at zero.
    fn set_up(&self, keys: usize) -> Result<(), String>;
    /// A client connection.
    fn session(&self) -> Result<Box<dyn RmwSession>, String>;
    /// Transactions re-run after conflicts so far.
    fn retries(&self) -> u64;
    /// The sum of counters `0..keys`.
    fn sum(&self, keys: usize) -> Result<i64, String>;
}

/// One client's connection.
pub trait RmwSession {
    /// Adds one to counter `key` in one transaction.
    fn add(&mut self, key: usize) -> Result<(), String>;
}

fn key(i: usize) -> String {
    format!("counter-{i}")
}

/// Counters as lambda objects.
pub struct LambdaRmw(pub Client);

impl Rmw for LambdaRmw {
    fn set_up(&self, keys: usize) -> Result<(), String> {
        for i in 0..keys {
            Counter::at(key(i))
                .with_client(self.0.clone())
                .create()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn session(&self) -> Result<Box<dyn RmwSession>, String> {
        Ok(Box::new(LambdaRmwSession(self.0.clone())))
    }

    fn retries(&self) -> u64 {
        self.0
            .workflow_stats()
            .map_or(0, |s| s.executions.saturating_sub(s.committed + s.given_up))
    }

    fn sum(&self, keys: usize) -> Result<i64, String> {
        (0..keys)
            .map(|i| Counter::at(key(i)).with_client(self.0.clone()).value())
            .sum::<crucial::Result<i64>>()
            .map_err(|e| e.to_string())
    }
}

struct LambdaRmwSession(Client);

impl RmwSession for LambdaRmwSession {
    fn add(&mut self, i: usize) -> Result<(), String> {
        Counter::at(key(i))
            .with_client(self.0.clone())
            .add(1)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// Counters in Redis, updated by client-side optimistic transactions.
pub struct RedisRmw {
    url: String,
    retries: Arc<AtomicU64>,
}

impl RedisRmw {
    /// The counters on the server at `url`.
    pub fn new(url: &str) -> RedisRmw {
        RedisRmw {
            url: url.into(),
            retries: Arc::default(),
        }
    }

    fn connect(&self) -> Result<redis::Connection, String> {
        redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection())
            .map_err(|e| e.to_string())
    }
}

impl Rmw for RedisRmw {
    fn set_up(&self, keys: usize) -> Result<(), String> {
        let mut con = self.connect()?;
        for i in 0..keys {
            con.set::<_, _, ()>(key(i), 0).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn session(&self) -> Result<Box<dyn RmwSession>, String> {
        Ok(Box::new(RedisRmwSession {
            con: self.connect()?,
            retries: Arc::clone(&self.retries),
        }))
    }

    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn sum(&self, keys: usize) -> Result<i64, String> {
        let mut con = self.connect()?;
        let mut sum = 0;
        for i in 0..keys {
            sum += con.get::<_, i64>(key(i)).map_err(|e| e.to_string())?;
        }
        Ok(sum)
    }
}

struct RedisRmwSession {
    con: redis::Connection,
    retries: Arc<AtomicU64>,
}

impl RmwSession for RedisRmwSession {
    fn add(&mut self, i: usize) -> Result<(), String> {
        let k = key(i);
        loop {
            let con = &mut self.con;
            let done: Option<()> = (|| -> redis::RedisResult<Option<()>> {
                redis::cmd("WATCH").arg(&k).query::<()>(con)?;
                let value: i64 = con.get(&k)?;
                redis::pipe().atomic().set(&k, value + 1).query(con)
            })()
            .map_err(|e| e.to_string())?;
            match done {
                Some(()) => return Ok(()),
                None => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Counters in PostgreSQL, updated by a serializable SQL function.
pub struct PostgresRmw<'a> {
    server: &'a Postgres,
    retries: Arc<AtomicU64>,
}

impl<'a> PostgresRmw<'a> {
    /// The counters' table and function in `server`.
    pub fn new(server: &'a Postgres) -> Result<PostgresRmw<'a>, String> {
        server
            .connect()?
            .batch_execute(
                "CREATE TABLE counters (key text PRIMARY KEY, value bigint NOT NULL);
                 CREATE FUNCTION add(k text, d bigint) RETURNS bigint AS $$
                 DECLARE v bigint;
                 BEGIN
                     SELECT value INTO STRICT v FROM counters WHERE key = k;
                     UPDATE counters SET value = v + d WHERE key = k;
                     RETURN v + d;
                 END $$ LANGUAGE plpgsql;",
            )
            .map_err(|e| e.to_string())?;
        Ok(PostgresRmw {
            server,
            retries: Arc::default(),
        })
    }
}

impl Rmw for PostgresRmw<'_> {
    fn set_up(&self, keys: usize) -> Result<(), String> {
        let mut client = self.server.connect()?;
        for i in 0..keys {
            client
                .execute("INSERT INTO counters VALUES ($1, 0)", &[&key(i)])
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn session(&self) -> Result<Box<dyn RmwSession>, String> {
        let mut client = self.server.connect()?;
        client
            .batch_execute("SET default_transaction_isolation = 'serializable'")
            .map_err(|e| e.to_string())?;
        let add = client
            .prepare("SELECT add($1, 1)")
            .map_err(|e| e.to_string())?;
        Ok(Box::new(PostgresRmwSession {
            client,
            add,
            retries: Arc::clone(&self.retries),
        }))
    }

    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn sum(&self, _keys: usize) -> Result<i64, String> {
        let row = self
            .server
            .connect()?
            .query_one("SELECT coalesce(sum(value), 0)::bigint FROM counters", &[])
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    }
}

struct PostgresRmwSession {
    client: postgres::Client,
    add: postgres::Statement,
    retries: Arc<AtomicU64>,
}

impl RmwSession for PostgresRmwSession {
    fn add(&mut self, i: usize) -> Result<(), String> {
        let k = key(i);
        loop {
            match self.client.query(&self.add, &[&k]) {
                Ok(_) => return Ok(()),
                Err(e) if is_retryable(&e) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Latencies of the committed transactions, sorted.
    pub latencies: Vec<Duration>,
    /// Transactions that failed.
    pub failures: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Re-executions after conflicts.
    pub retries: u64,
}

impl Measured {
    /// Committed transactions per second.
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` clients each adding one to counters picked with `skew` (see
/// `forum::load::Load::skew`) among `keys`, for `duration`. Checks that the
/// counters grew by exactly the increments acknowledged.
pub fn run(
    system: &dyn Rmw,
    keys: usize,
    clients: usize,
    duration: Duration,
    skew: f64,
) -> Result<Measured, String> {
    let before = system.sum(keys)?;
    let retries = system.retries();
    let start = Instant::now();
    let deadline = start + duration;
    let results: Vec<Result<(Vec<Duration>, u64), String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut session = system.session()?;
                    let mut rng = (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let (mut latencies, mut failures) = (Vec::new(), 0);
                    while Instant::now() < deadline {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let u = (rng >> 11) as f64 / (1u64 << 53) as f64;
                        let i = ((keys as f64 * u.powf(skew)) as usize).min(keys - 1);
                        let t = Instant::now();
                        match session.add(i) {
                            Ok(()) => latencies.push(t.elapsed()),
                            Err(_) => failures += 1,
                        }
                    }
                    Ok((latencies, failures))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a client panicked".into())))
            .collect()
    });
    let elapsed = start.elapsed();
    let mut measured = Measured {
        latencies: Vec::new(),
        failures: 0,
        elapsed,
        retries: system.retries().saturating_sub(retries),
    };
    for result in results {
        let (latencies, failures) = result?;
        measured.latencies.extend(latencies);
        measured.failures += failures;
    }
    measured.latencies.sort_unstable();
    let after = system.sum(keys)?;
    let acknowledged = measured.latencies.len() as i64;
    if after - before != acknowledged {
        return Err(format!(
            "counters grew by {}, {acknowledged} increments acknowledged: a lost or doubled update",
            after - before
        ));
    }
    Ok(measured)
}
