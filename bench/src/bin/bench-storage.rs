//! `bench-storage`: the two embedded engines the durable node could stand on,
//! redb and fjall, measured on the node's own write pattern, beside the floor
//! of this disk (append to a file + `fdatasync`).
//!
//! Rows: one small durable write per commit (a counter's new state: what one
//! call on a persistent object costs with no other caller), a group of 64 small
//! writes per durable commit (group commit with many callers), one 20 KiB value
//! per durable commit (a centroid aggregate), the disk used after 100k
//! overwrites of 1 000 keys, and the time to reopen and read back 100k keys.
//!
//! Example: `bench-storage --dir /var/tmp` (the directory's disk is measured;
//! the default is the system's temporary directory).

use clap::Parser;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Measures redb and fjall on the durable node's write pattern.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the databases are created (its disk is what is measured).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Durable commits timed per single-write row.
    #[arg(long, default_value_t = 2000)]
    commits: usize,
}

/// One engine, reduced to what the durable node needs of it.
trait Engine: Sized {
    const NAME: &'static str;
    fn open(dir: &Path) -> Self;
    /// Writes every pair in one atomic commit; `fsync` makes it durable.
    fn commit(&self, pairs: &[(Vec<u8>, Vec<u8>)], fsync: bool);
    /// Reads every pair back; returns how many.
    fn scan(&self) -> usize;
}

struct Redb(redb::Database);

const TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("objects");

impl Engine for Redb {
    const NAME: &'static str = "redb 4";

    fn open(dir: &Path) -> Self {
        Redb(redb::Database::create(dir.join("redb.db")).expect("redb create"))
    }

    fn commit(&self, pairs: &[(Vec<u8>, Vec<u8>)], fsync: bool) {
        let mut tx = self.0.begin_write().expect("begin");
        if !fsync {
            tx.set_durability(redb::Durability::None)
                .expect("durability");
        }
        {
            let mut table = tx.open_table(TABLE).expect("table");
            for (k, v) in pairs {
                table.insert(k.as_slice(), v.as_slice()).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }

    fn scan(&self) -> usize {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = self.0.begin_read().expect("read");
        let table = tx.open_table(TABLE).expect("table");
        let mut n = 0;
        for entry in table.iter().expect("iter") {
            let (k, v) = entry.expect("entry");
            n += usize::from(!k.value().is_empty() && !v.value().is_empty());
        }
        n
    }
}

struct Fjall {
    db: fjall::Database,
    objects: fjall::Keyspace,
}

impl Engine for Fjall {
    const NAME: &'static str = "fjall 3";

    fn open(dir: &Path) -> Self {
        let db = fjall::Database::builder(dir.join("fjall"))
            .open()
            .expect("fjall open");
        let objects = db
            .keyspace("objects", fjall::KeyspaceCreateOptions::default)
            .expect("keyspace");
        Fjall { db, objects }
    }

    fn commit(&self, pairs: &[(Vec<u8>, Vec<u8>)], fsync: bool) {
        let mut batch = self.db.batch();
        for (k, v) in pairs {
            batch.insert(&self.objects, k.clone(), v.clone());
        }
        batch.commit().expect("commit");
        if fsync {
            self.db
                .persist(fjall::PersistMode::SyncData)
                .expect("persist");
        }
    }

    fn scan(&self) -> usize {
        let mut n = 0;
        for guard in self.objects.iter() {
            let (k, v) = guard.into_inner().expect("entry");
            n += usize::from(!k.is_empty() && !v.is_empty());
        }
        n
    }
}

/// The floor: length-prefixed records appended to one file, `fdatasync` per commit.
struct Floor(std::sync::Mutex<File>);

impl Engine for Floor {
    const NAME: &'static str = "append + fdatasync";

    fn open(dir: &Path) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(dir.join("log"))
            .expect("log");
        Floor(std::sync::Mutex::new(file))
    }

    fn commit(&self, pairs: &[(Vec<u8>, Vec<u8>)], fsync: bool) {
        let mut record = Vec::new();
        for (k, v) in pairs {
            record.extend_from_slice(&(k.len() as u32).to_le_bytes());
            record.extend_from_slice(&(v.len() as u32).to_le_bytes());
            record.extend_from_slice(k);
            record.extend_from_slice(v);
        }
        let mut file = self.0.lock().expect("lock");
        file.write_all(&record).expect("write");
        if fsync {
            file.sync_data().expect("fdatasync");
        }
    }

    fn scan(&self) -> usize {
        let bytes = std::fs::read(self_path(&self.0)).expect("read log");
        let mut at = 0;
        let mut n = 0;
        while at + 8 <= bytes.len() {
            let k = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
            let v = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4")) as usize;
            at += 8 + k + v;
            n += 1;
        }
        n
    }
}

fn self_path(file: &std::sync::Mutex<File>) -> PathBuf {
    use std::os::fd::AsRawFd;
    let fd = file.lock().expect("lock").as_raw_fd();
    std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("log path")
}

fn key(i: usize) -> Vec<u8> {
    format!("Counter/account-{i:08}").into_bytes()
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at].as_secs_f64() * 1e6
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map_or(0, |m| m.len());
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

/// Times `commits` commits of what `pairs` makes for commit `i`; p50, p99 in µs and commits/s.
fn timed<E: Engine>(
    engine: &E,
    commits: usize,
    pairs: impl Fn(usize) -> Vec<(Vec<u8>, Vec<u8>)>,
) -> (f64, f64, f64) {
    let mut times = Vec::with_capacity(commits);
    let start = Instant::now();
    for i in 0..commits {
        let batch = pairs(i);
        let t = Instant::now();
        engine.commit(&batch, true);
        times.push(t.elapsed());
    }
    let per_second = commits as f64 / start.elapsed().as_secs_f64();
    times.sort_unstable();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        per_second,
    )
}

/// An empty directory for one row of engine `E`.
fn fresh<E: Engine>(root: &Path, row: &str) -> PathBuf {
    let dir = root.join(format!("{}-{row}", E::NAME.replace([' ', '+'], "-")));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn measure<E: Engine>(root: &Path, commits: usize) {
    let dir = fresh::<E>(root, "writes");
    let engine = E::open(&dir);
    let small = vec![7u8; 16];
    let (p50, p99, single) = timed(&engine, commits, |i| vec![(key(i % 1000), small.clone())]);
    let (_, _, groups) = timed(&engine, commits / 8, |i| {
        (0..64)
            .map(|j| (key((i * 64 + j) % 1000), small.clone()))
            .collect()
    });
    let large = vec![3u8; 20 * 1024];
    let (large_p50, _, _) = timed(&engine, commits / 4, |i| vec![(key(i % 10), large.clone())]);
    drop(engine);

    // Space: 100k overwrites of 1 000 keys, in groups of 64, durable.
    let space = fresh::<E>(root, "space");
    {
        let engine = E::open(&space);
        for g in 0..(100_000 / 64) {
            let batch: Vec<_> = (0..64)
                .map(|j| (key((g * 64 + j) % 1000), small.clone()))
                .collect();
            engine.commit(&batch, false);
        }
        engine.commit(&[(key(0), small.clone())], true);
    }
    let bytes = dir_bytes(&space);

    // Recovery: 100k distinct keys, then reopen and read everything back.
    let rec = fresh::<E>(root, "recovery");
    {
        let engine = E::open(&rec);
        for g in 0..(100_000 / 1000) {
            let batch: Vec<_> = (0..1000)
                .map(|j| (key(g * 1000 + j), small.clone()))
                .collect();
            engine.commit(&batch, false);
        }
        engine.commit(&[(key(0), small.clone())], true);
    }
    let start = Instant::now();
    let engine = E::open(&rec);
    let n = engine.scan();
    let recovery = start.elapsed();
    println!(
        "| {} | {p50:.0} | {p99:.0} | {single:.0} | {:.0} | {large_p50:.0} | {:.1} | {:.0} ({n} records) |",
        E::NAME,
        groups * 64.0,
        bytes as f64 / 1e6,
        recovery.as_secs_f64() * 1e3,
    );
    drop(engine);
    for d in [dir, space, rec] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn main() {
    let args = Args::parse();
    let root = crucial_bench::scratch_dir(args.dir, "storage");
    println!(
        "# storage engines on the durable node's writes: {} durable commits per single-write row, in {}",
        args.commits,
        root.display()
    );
    println!();
    println!("| engine | 1 write/commit p50 us | p99 us | commits/s | writes/s, 64 per commit | 20 KiB/commit p50 us | MB after 100k overwrites of 1k keys | reopen + read 100k keys, ms |");
    println!("|---|---|---|---|---|---|---|---|");
    measure::<Floor>(&root, args.commits);
    measure::<Redb>(&root, args.commits);
    measure::<Fjall>(&root, args.commits);
    let _ = std::fs::remove_dir_all(&root);
    println!();
    println!("# every commit above is durable (fsync / fdatasync) except in the space and recovery rows, which end with one");
}
