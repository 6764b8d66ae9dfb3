//! CloudForum disaggregated, the design LambdaStore argues against: the same
//! logic runs in the client, reading and writing Redis inside optimistic
//! `WATCH`/`MULTI`/`EXEC` transactions, re-run when a watched key changed.
//!
//! Layout: `account:K` (hash: name), `account:K:threads` and
//! `account:K:comments` (sets); `community:K` (hash: name, count) and
//! `community:K:threads` (hash: number -> entry); `thread:K` (hash: title,
//! text, author, community, count) and `thread:K:comments` (hash: number ->
//! comment). Entries and comments are `|`-separated strings.

use forum::load::{Backend, Session};
use redis::{Commands, Connection};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The forum on a Redis server.
pub struct RedisForum {
    url: String,
    retries: Arc<AtomicU64>,
}

impl RedisForum {
    /// The forum on the Redis server at `url`.
    pub fn new(url: &str) -> RedisForum {
        RedisForum {
            url: url.to_string(),
            retries: Arc::default(),
        }
    }
}

impl Backend for RedisForum {
    fn session(&self) -> Result<Box<dyn Session>, String> {
        let connection = redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection())
            .map_err(|e| e.to_string())?;
        Ok(Box::new(RedisSession {
            connection,
            retries: Arc::clone(&self.retries),
        }))
    }

    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

struct RedisSession {
    connection: Connection,
    retries: Arc<AtomicU64>,
}

/// Re-runs a transaction body until its `EXEC` goes through: `WATCH` the
/// keys, read, queue the writes; a `None` from `EXEC` means a watched key
/// changed (a conflict).
fn transaction<T>(
    con: &mut Connection,
    retries: &AtomicU64,
    keys: &[String],
    mut body: impl FnMut(&mut Connection) -> redis::RedisResult<Option<T>>,
) -> Result<T, String> {
    loop {
        redis::cmd("WATCH")
            .arg(keys)
            .query::<()>(con)
            .map_err(|e| e.to_string())?;
        match body(con).map_err(|e| e.to_string())? {
            Some(done) => return Ok(done),
            None => {
                retries.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A thread's title, text and comment count.
type ThreadHead = (Option<String>, Option<String>, Option<u32>);

/// What `EXEC` gives when a watched key changed: nothing.
type Exec<T> = Option<T>;

impl Session for RedisSession {
    fn create_account(&mut self, account: &str, name: &str) -> Result<(), String> {
        self.connection
            .hset::<_, _, _, ()>(format!("account:{account}"), "name", name)
            .map_err(|e| e.to_string())
    }

    fn create_community(&mut self, community: &str, name: &str) -> Result<(), String> {
        redis::pipe()
            .hset(format!("community:{community}"), "name", name)
            .hset(format!("community:{community}"), "count", 0)
            .query::<()>(&mut self.connection)
            .map_err(|e| e.to_string())
    }

    fn create_thread(
        &mut self,
        account: &str,
        community: &str,
        thread: &str,
        title: &str,
        text: &str,
    ) -> Result<(), String> {
        let (a, c, t) = (
            format!("account:{account}"),
            format!("community:{community}"),
            format!("thread:{thread}"),
        );
        let keys = [a.clone(), c.clone(), t.clone()];
        transaction(&mut self.connection, &self.retries, &keys, |con| {
            let name: Option<String> = con.hget(&a, "name")?;
            let count: Option<u64> = con.hget(&c, "count")?;
            let exists: bool = con.exists(&t)?;
            let (Some(name), Some(count)) = (name, count) else {
                redis::cmd("UNWATCH").query::<()>(con)?;
                return Err((redis::ErrorKind::TypeError, "no such account or community").into());
            };
            if exists {
                redis::cmd("UNWATCH").query::<()>(con)?;
                return Err((redis::ErrorKind::TypeError, "the thread exists").into());
            }
            let n = count + 1;
            let entry = format!("{thread}|{title}|{name}|{}", now_ms());
            redis::pipe()
                .atomic()
                .hset_multiple(
                    &t,
                    &[
                        ("title", title),
                        ("text", text),
                        ("author", account),
                        ("author_name", &name),
                        ("community", community),
                        ("count", "0"),
                    ],
                )
                .hset(&c, "count", n)
                .hset(format!("{c}:threads"), n, entry)
                .sadd(format!("{a}:threads"), thread)
                .query::<Exec<()>>(con)
        })
    }

    fn comment(&mut self, account: &str, thread: &str, text: &str) -> Result<u32, String> {
        let (a, t) = (format!("account:{account}"), format!("thread:{thread}"));
        let keys = [a.clone(), t.clone()];
        transaction(&mut self.connection, &self.retries, &keys, |con| {
            let name: Option<String> = con.hget(&a, "name")?;
            let count: Option<u32> = con.hget(&t, "count")?;
            let (Some(name), Some(count)) = (name, count) else {
                redis::cmd("UNWATCH").query::<()>(con)?;
                return Err((redis::ErrorKind::TypeError, "no such account or thread").into());
            };
            let n = count + 1;
            let comment = format!("{account}|{name}|{text}|{}", now_ms());
            let done = redis::pipe()
                .atomic()
                .hset(&t, "count", n)
                .hset(format!("{t}:comments"), n, comment)
                .sadd(format!("{a}:comments"), format!("{thread}|{n}"))
                .query::<Exec<()>>(con)?;
            Ok(done.map(|()| n))
        })
    }

    fn page(&mut self, thread: &str, from: u32, n: u32) -> Result<usize, String> {
        let t = format!("thread:{thread}");
        let numbers: Vec<u32> = (from..from + n).collect();
        // One atomic read of the thread and its page.
        let (head, comments): (ThreadHead, Vec<Option<String>>) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(&t)
            .arg(&["title", "text", "count"])
            .cmd("HMGET")
            .arg(format!("{t}:comments"))
            .arg(numbers)
            .query(&mut self.connection)
            .map_err(|e| e.to_string())?;
        if head.0.is_none() {
            return Err(format!("no thread {thread}"));
        }
        Ok(comments.into_iter().flatten().count())
    }

    fn listing(&mut self, community: &str, n: u64) -> Result<usize, String> {
        let c = format!("community:{community}");
        let keys = [c.clone()];
        transaction(&mut self.connection, &self.retries, &keys, |con| {
            let count: u64 = con.hget::<_, _, Option<u64>>(&c, "count")?.unwrap_or(0);
            let numbers: Vec<u64> = (count.saturating_sub(n) + 1..=count).rev().collect();
            if numbers.is_empty() {
                redis::cmd("UNWATCH").query::<()>(con)?;
                return Ok(Some(0));
            }
            let entries: Exec<(Vec<Option<String>>,)> = redis::pipe()
                .atomic()
                .cmd("HMGET")
                .arg(format!("{c}:threads"))
                .arg(numbers)
                .query(con)?;
            Ok(entries.map(|(e,)| e.into_iter().flatten().count()))
        })
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
