//! The two-object transaction of `bench-spread`: move one unit from one
//! counter to another, atomically. On lambda objects placed object by object
//! (a workflow on the first counter's node, reaching the second one's node
//! with two-phase commit when it is elsewhere), on Redis (`WATCH` both keys,
//! `GET` both, `MULTI`/`SET`/`SET`/`EXEC`, re-run on conflict: one instance,
//! so one hash slot — Redis Cluster refuses a transaction across slots) and
//! on PostgreSQL (a PL/pgSQL function in a `SERIALIZABLE` transaction). After
//! a run the counters must still add up to what they held.

use crate::postgres::{is_retryable, Postgres};
use crucial::store::{join, Cell, TxError, Workflow};
use crucial::{Client, ObjectId};
use redis::Commands;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A counter placed on its own node of the cluster.
#[crucial::lambda_object(name = "crucial_bench::SpreadCounter", placement = "object")]
pub struct SpreadCounter {
    value: Cell<i64>,
}

#[crucial::lambda_object]
impl SpreadCounter {
    /// A counter at `value`.
    #[constructor]
    pub fn create(&mut self, value: i64) -> Result<(), TxError> {
        self.value.set(&value)
    }

    /// Adds `n`; the new value.
    pub fn add(&mut self, n: i64) -> Result<i64, TxError> {
        let value = self.value.get()?.unwrap_or(0) + n;
        self.value.set(&value)?;
        Ok(value)
    }

    /// The value.
    pub fn value(&self) -> Result<i64, TxError> {
        Ok(self.value.get()?.unwrap_or(0))
    }

    /// Moves `n` from this counter to `to`, in one transaction.
    pub async fn transfer(&mut self, wf: &Workflow, to: ObjectId, n: i64) -> Result<(), TxError> {
        let me = wf.this().expect("a method has an object").clone();
        let (from, to) = join(
            wf.at::<SpreadCounter>(me).add(-n),
            wf.at::<SpreadCounter>(to).add(n),
        )
        .await;
        from?;
        to?;
        Ok(())
    }
}

/// The key of counter `i`.
pub fn key(i: usize) -> String {
    format!("counter-{i}")
}

/// What each counter holds at the start.
pub const START: i64 = 1_000_000;

/// A system the transfer runs on.
pub trait Transfers: Sync {
    /// Creates counters `0..keys` at [`START`].
    fn set_up(&self, keys: usize) -> Result<(), String>;
    /// A client connection.
    fn session(&self) -> Result<Box<dyn TransferSession>, String>;
    /// Transactions re-run after conflicts so far.
    fn retries(&self) -> u64;
    /// The sum of counters `0..keys`.
    fn sum(&self, keys: usize) -> Result<i64, String>;
}

/// One client's connection.
pub trait TransferSession {
    /// Moves one unit from counter `from` to counter `to`.
    fn transfer(&mut self, from: usize, to: usize) -> Result<(), String>;
    /// Adds one to counter `key` (a one-object transaction).
    fn add(&mut self, key: usize) -> Result<(), String>;
    /// The sum of counters `0..keys`, read in one transaction (a map call,
    /// `MGET`, `SELECT sum`).
    fn audit(&mut self, keys: usize) -> Result<i64, String>;
    /// Counter `key`'s value (a read-only call, `GET`, `SELECT`).
    fn read(&mut self, key: usize) -> Result<i64, String>;
}

/// What each client of [`run`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One counter plus one (one object).
    Add,
    /// One unit between two random counters.
    Transfer,
    /// Every counter read and summed in one transaction.
    Audit,
    /// One hot counter (the first) read by every client.
    Read,
}

impl Workload {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Add => "add",
            Workload::Transfer => "transfer",
            Workload::Audit => "audit (all)",
            Workload::Read => "read (hot)",
        }
    }
}

/// Spread counters on a cluster.
pub struct LambdaTransfers(pub Client);

impl Transfers for LambdaTransfers {
    fn set_up(&self, keys: usize) -> Result<(), String> {
        for i in 0..keys {
            SpreadCounter::at(key(i))
                .with_client(self.0.clone())
                .create(START)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn session(&self) -> Result<Box<dyn TransferSession>, String> {
        Ok(Box::new(LambdaSession(self.0.clone())))
    }

    fn retries(&self) -> u64 {
        self.0
            .workflow_stats()
            .map_or(0, |s| s.executions.saturating_sub(s.committed + s.given_up))
    }

    fn sum(&self, keys: usize) -> Result<i64, String> {
        (0..keys)
            .map(|i| {
                SpreadCounter::at(key(i))
                    .with_client(self.0.clone())
                    .value()
            })
            .sum::<crucial::Result<i64>>()
            .map_err(|e| e.to_string())
    }
}

struct LambdaSession(Client);

impl TransferSession for LambdaSession {
    fn transfer(&mut self, from: usize, to: usize) -> Result<(), String> {
        SpreadCounter::at(key(from))
            .with_client(self.0.clone())
            .transfer(SpreadCounter::at(key(to)).id().clone(), 1)
            .map_err(|e| e.to_string())
    }

    fn add(&mut self, i: usize) -> Result<(), String> {
        SpreadCounter::at(key(i))
            .with_client(self.0.clone())
            .add(1)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn audit(&mut self, keys: usize) -> Result<i64, String> {
        let seen = SpreadCounter::map(crucial::store::Objects::All)
            .with_client(self.0.clone())
            .value()
            .map_err(|e| e.to_string())?;
        match seen.len() == keys {
            true => Ok(seen.reduce(0, |sum, v| sum + v)),
            false => Err(format!("the map saw {} counters of {keys}", seen.len())),
        }
    }

    fn read(&mut self, i: usize) -> Result<i64, String> {
        SpreadCounter::at(key(i))
            .with_client(self.0.clone())
            .value()
            .map_err(|e| e.to_string())
    }
}

/// Counters in one Redis instance (one hash slot: `{bank}`).
pub struct RedisTransfers {
    url: String,
    retries: Arc<AtomicU64>,
}

fn slot_key(i: usize) -> String {
    format!("{{bank}}:{}", key(i))
}

impl RedisTransfers {
    /// The counters on the server at `url`.
    pub fn new(url: &str) -> RedisTransfers {
        RedisTransfers {
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

impl Transfers for RedisTransfers {
    fn set_up(&self, keys: usize) -> Result<(), String> {
        let mut con = self.connect()?;
        for i in 0..keys {
            con.set::<_, _, ()>(slot_key(i), START)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn session(&self) -> Result<Box<dyn TransferSession>, String> {
        Ok(Box::new(RedisSession {
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
            sum += con.get::<_, i64>(slot_key(i)).map_err(|e| e.to_string())?;
        }
        Ok(sum)
    }
}

struct RedisSession {
    con: redis::Connection,
    retries: Arc<AtomicU64>,
}

impl RedisSession {
    /// Runs one optimistic transaction over `keys` (`WATCH`, read, `MULTI`
    /// with the new values, `EXEC`) until it commits.
    fn optimistic(&mut self, deltas: &[(String, i64)]) -> Result<(), String> {
        loop {
            let con = &mut self.con;
            let done: Option<()> = (|| -> redis::RedisResult<Option<()>> {
                let mut watch = redis::cmd("WATCH");
                for (k, _) in deltas {
                    watch.arg(k);
                }
                watch.query::<()>(con)?;
                let mut pipe = redis::pipe();
                pipe.atomic();
                for (k, d) in deltas {
                    let value: i64 = con.get(k)?;
                    pipe.set(k, value + d);
                }
                pipe.query(con)
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

impl TransferSession for RedisSession {
    fn transfer(&mut self, from: usize, to: usize) -> Result<(), String> {
        self.optimistic(&[(slot_key(from), -1), (slot_key(to), 1)])
    }

    fn add(&mut self, i: usize) -> Result<(), String> {
        self.optimistic(&[(slot_key(i), 1)])
    }

    fn audit(&mut self, keys: usize) -> Result<i64, String> {
        let names: Vec<String> = (0..keys).map(slot_key).collect();
        let values: Vec<i64> = self.con.mget(&names).map_err(|e| e.to_string())?;
        Ok(values.into_iter().sum())
    }

    fn read(&mut self, i: usize) -> Result<i64, String> {
        self.con.get(slot_key(i)).map_err(|e| e.to_string())
    }
}

/// Counters in PostgreSQL, moved by a serializable SQL function.
pub struct PostgresTransfers<'a> {
    server: &'a Postgres,
    retries: Arc<AtomicU64>,
}

impl<'a> PostgresTransfers<'a> {
    /// The counters' table and functions in `server`.
    pub fn new(server: &'a Postgres) -> Result<PostgresTransfers<'a>, String> {
        server
            .connect()?
            .batch_execute(
                "CREATE TABLE spread (key text PRIMARY KEY, value bigint NOT NULL);
                 CREATE FUNCTION transfer(a text, b text) RETURNS void AS $$
                 DECLARE va bigint; vb bigint;
                 BEGIN
                     SELECT value INTO STRICT va FROM spread WHERE key = a;
                     SELECT value INTO STRICT vb FROM spread WHERE key = b;
                     UPDATE spread SET value = va - 1 WHERE key = a;
                     UPDATE spread SET value = vb + 1 WHERE key = b;
                 END $$ LANGUAGE plpgsql;
                 CREATE FUNCTION add_one(k text) RETURNS void AS $$
                 DECLARE v bigint;
                 BEGIN
                     SELECT value INTO STRICT v FROM spread WHERE key = k;
                     UPDATE spread SET value = v + 1 WHERE key = k;
                 END $$ LANGUAGE plpgsql;",
            )
            .map_err(|e| e.to_string())?;
        Ok(PostgresTransfers {
            server,
            retries: Arc::default(),
        })
    }
}

impl Transfers for PostgresTransfers<'_> {
    fn set_up(&self, keys: usize) -> Result<(), String> {
        let mut client = self.server.connect()?;
        for i in 0..keys {
            client
                .execute("INSERT INTO spread VALUES ($1, $2)", &[&key(i), &START])
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn session(&self) -> Result<Box<dyn TransferSession>, String> {
        let mut client = self.server.connect()?;
        client
            .batch_execute("SET default_transaction_isolation = 'serializable'")
            .map_err(|e| e.to_string())?;
        let transfer = client
            .prepare("SELECT transfer($1, $2)")
            .map_err(|e| e.to_string())?;
        let add = client
            .prepare("SELECT add_one($1)")
            .map_err(|e| e.to_string())?;
        let audit = client
            .prepare("SELECT coalesce(sum(value), 0)::bigint FROM spread")
            .map_err(|e| e.to_string())?;
        let read = client
            .prepare("SELECT value FROM spread WHERE key = $1")
            .map_err(|e| e.to_string())?;
        Ok(Box::new(PostgresSession {
            client,
            transfer,
            add,
            audit,
            read,
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
            .query_one("SELECT coalesce(sum(value), 0)::bigint FROM spread", &[])
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    }
}

struct PostgresSession {
    client: postgres::Client,
    transfer: postgres::Statement,
    add: postgres::Statement,
    audit: postgres::Statement,
    read: postgres::Statement,
    retries: Arc<AtomicU64>,
}

impl PostgresSession {
    fn run(
        &mut self,
        add: bool,
        args: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<(), String> {
        loop {
            let statement = if add { &self.add } else { &self.transfer };
            match self.client.query(statement, args) {
                Ok(_) => return Ok(()),
                Err(e) if is_retryable(&e) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl TransferSession for PostgresSession {
    fn transfer(&mut self, from: usize, to: usize) -> Result<(), String> {
        let (a, b) = (key(from), key(to));
        self.run(false, &[&a, &b])
    }

    fn add(&mut self, i: usize) -> Result<(), String> {
        let k = key(i);
        self.run(true, &[&k])
    }

    fn read(&mut self, i: usize) -> Result<i64, String> {
        let k = key(i);
        loop {
            match self.client.query_one(&self.read, &[&k]) {
                Ok(row) => return Ok(row.get(0)),
                Err(e) if is_retryable(&e) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn audit(&mut self, _keys: usize) -> Result<i64, String> {
        loop {
            match self.client.query_one(&self.audit, &[]) {
                Ok(row) => return Ok(row.get(0)),
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

/// `clients` clients each running `workload` (on uniformly random counters
/// among `keys`) for `duration`. Checks the counters afterwards: transfers
/// keep their sum, increments add exactly the ones acknowledged; each audit
/// must see the sum (nothing else writes meanwhile), or it counts as failed.
pub fn run(
    system: &dyn Transfers,
    keys: usize,
    clients: usize,
    duration: Duration,
    workload: Workload,
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
                        let from = (rng % keys as u64) as usize;
                        let to = (from + 1 + ((rng >> 24) % (keys as u64 - 1)) as usize) % keys;
                        let t = Instant::now();
                        let done = match workload {
                            Workload::Add => session.add(from),
                            Workload::Transfer => session.transfer(from, to),
                            Workload::Audit => match session.audit(keys) {
                                Ok(sum) if sum == before => Ok(()),
                                Ok(sum) => Err(format!("an audit saw {sum}, not {before}")),
                                Err(e) => Err(e),
                            },
                            Workload::Read => session.read(0).map(drop),
                        };
                        match done {
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
    let expected = match workload {
        Workload::Add => before + measured.latencies.len() as i64,
        Workload::Transfer | Workload::Audit | Workload::Read => before,
    };
    if after != expected {
        return Err(format!(
            "counters sum to {after}, {expected} expected: a lost, doubled or half-applied transaction"
        ));
    }
    Ok(measured)
}
