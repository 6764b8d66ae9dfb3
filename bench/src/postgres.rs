//! A PostgreSQL server (Debian's `postgresql`) started by a benchmark in a
//! temporary directory on a free port, and stopped (and removed) when
//! dropped. As root, the server runs as the `postgres` user, since
//! PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running PostgreSQL server.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    /// Its loopback port.
    pub port: u16,
}

/// Where PostgreSQL's programs are: `initdb` on `PATH`, or Debian's
/// `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "PostgreSQL is not installed: `apt-get install postgresql`".to_string())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql: `apt-get install postgresql`".into())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` from `bin`, as the `postgres` user when this process is root.
fn command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Postgres {
    /// Starts a fresh server. `durable`: every commit waits for its WAL
    /// flush (`synchronous_commit = on`, `fsync = on`, PostgreSQL's
    /// default); otherwise neither (nothing waits for the disk, as with a
    /// node without a data directory and Redis without persistence).
    pub fn start(durable: bool) -> Result<Postgres, String> {
        let bin = bin_dir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir =
            std::env::temp_dir().join(format!("crucial-bench-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(&dir);
                    c
                },
                "chown",
            )?;
        }
        let data = dir.join("data");
        let mut init = command(&bin, "initdb");
        init.arg("-D")
            .arg(&data)
            .args(["-U", "bench", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        run(init, "initdb")?;
        let sync = if durable { "on" } else { "off" };
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
             -c shared_buffers=256MB -c synchronous_commit={sync} -c fsync={sync} \
             -c full_page_writes={sync}",
            dir.display()
        );
        let mut start = command(&bin, "pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "-t", "30", "-o", &options, "start"]);
        run(start, "pg_ctl start")?;
        let server = Postgres { dir, bin, port };
        // The server is up (`-w`); wait for it to accept TCP as well.
        for _ in 0..100 {
            if server.connect().is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("PostgreSQL did not accept connections".into())
    }

    /// The postmaster's process id (its backends are its children).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data").join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// A new connection (user `bench`, database `postgres`).
    pub fn connect(&self) -> Result<postgres::Client, String> {
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user=bench dbname=postgres",
                self.port
            ),
            postgres::NoTls,
        )
        .map_err(|e| e.to_string())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut stop = command(&self.bin, "pg_ctl");
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `error` is PostgreSQL saying "retry this transaction"
/// (serialization failure or deadlock).
pub fn is_retryable(error: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    matches!(
        error.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}
