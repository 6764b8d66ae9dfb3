//! CloudForum on PostgreSQL: the operations are SQL functions (PL/pgSQL)
//! that run next to the data, each call one `SERIALIZABLE` transaction,
//! re-run on a serialization failure.

use crate::postgres::{is_retryable, Postgres};
use forum::load::{Backend, Session};
use postgres::{Client, Statement};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The schema and the forum's functions.
pub const SCHEMA: &str = r#"
CREATE TABLE accounts (key text PRIMARY KEY, name text NOT NULL);
CREATE TABLE account_threads (account text, thread text, PRIMARY KEY (account, thread));
CREATE TABLE account_comments (account text, thread text, n int, PRIMARY KEY (account, thread, n));
CREATE TABLE communities (key text PRIMARY KEY, name text NOT NULL, count bigint NOT NULL);
CREATE TABLE community_threads (community text, n bigint, thread text, title text,
    author_name text, time_ms bigint, PRIMARY KEY (community, n));
CREATE TABLE threads (key text PRIMARY KEY, community text, author text, author_name text,
    title text, body text, count int NOT NULL);
CREATE TABLE comments (thread text, n int, author text, author_name text, body text,
    time_ms bigint, PRIMARY KEY (thread, n));

CREATE FUNCTION now_ms() RETURNS bigint AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$ LANGUAGE sql;

CREATE FUNCTION create_thread(a text, c text, t text, ttl text, txt text) RETURNS void AS $$
DECLARE nm text; k bigint;
BEGIN
    SELECT name INTO STRICT nm FROM accounts WHERE key = a;
    UPDATE communities SET count = count + 1 WHERE key = c RETURNING count INTO STRICT k;
    INSERT INTO threads VALUES (t, c, a, nm, ttl, txt, 0);
    INSERT INTO community_threads VALUES (c, k, t, ttl, nm, now_ms());
    INSERT INTO account_threads VALUES (a, t);
END $$ LANGUAGE plpgsql;

CREATE FUNCTION create_comment(a text, t text, txt text) RETURNS int AS $$
DECLARE nm text; k int;
BEGIN
    SELECT name INTO STRICT nm FROM accounts WHERE key = a;
    UPDATE threads SET count = count + 1 WHERE key = t RETURNING count INTO STRICT k;
    INSERT INTO comments VALUES (t, k, a, nm, txt, now_ms());
    INSERT INTO account_comments VALUES (a, t, k);
    RETURN k;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION thread_page(t text, f int, k int) RETURNS json AS $$
    SELECT json_build_object('title', th.title, 'text', th.body, 'count', th.count,
        'comments', (SELECT coalesce(json_agg(c ORDER BY c.n), '[]'::json) FROM comments c
                     WHERE c.thread = t AND c.n >= f AND c.n < f + k))
    FROM threads th WHERE th.key = t $$ LANGUAGE sql;

CREATE FUNCTION latest(c text, k int) RETURNS json AS $$
    SELECT coalesce(json_agg(e ORDER BY e.n DESC), '[]'::json) FROM community_threads e
    WHERE e.community = c AND e.n > (SELECT count FROM communities WHERE key = c) - k $$
    LANGUAGE sql;
"#;

/// The forum in a PostgreSQL server.
pub struct PostgresForum<'a> {
    server: &'a Postgres,
    retries: Arc<AtomicU64>,
}

impl<'a> PostgresForum<'a> {
    /// Creates the schema in `server` (a fresh one).
    pub fn new(server: &'a Postgres) -> Result<PostgresForum<'a>, String> {
        server
            .connect()?
            .batch_execute(SCHEMA)
            .map_err(|e| e.to_string())?;
        Ok(PostgresForum {
            server,
            retries: Arc::default(),
        })
    }
}

impl Backend for PostgresForum<'_> {
    fn session(&self) -> Result<Box<dyn Session>, String> {
        let mut client = self.server.connect()?;
        client
            .batch_execute("SET default_transaction_isolation = 'serializable'")
            .map_err(|e| e.to_string())?;
        let mut prepare = |sql: &str| client.prepare(sql).map_err(|e| e.to_string());
        let statements = [
            prepare("INSERT INTO accounts VALUES ($1, $2)")?,
            prepare("INSERT INTO communities VALUES ($1, $2, 0)")?,
            prepare("SELECT create_thread($1, $2, $3, $4, $5)")?,
            prepare("SELECT create_comment($1, $2, $3)")?,
            prepare("SELECT thread_page($1, $2, $3)::text")?,
            prepare("SELECT latest($1, $2)::text")?,
        ];
        Ok(Box::new(PostgresSession {
            client,
            statements,
            retries: Arc::clone(&self.retries),
        }))
    }

    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

struct PostgresSession {
    client: Client,
    statements: [Statement; 6],
    retries: Arc<AtomicU64>,
}

impl PostgresSession {
    /// Runs statement `i` (one implicit `SERIALIZABLE` transaction), again
    /// after each serialization failure.
    fn run<T>(
        &mut self,
        i: usize,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        read: impl Fn(&[postgres::Row]) -> T,
    ) -> Result<T, String> {
        loop {
            match self.client.query(&self.statements[i], params) {
                Ok(rows) => return Ok(read(&rows)),
                Err(e) if is_retryable(&e) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Session for PostgresSession {
    fn create_account(&mut self, account: &str, name: &str) -> Result<(), String> {
        self.run(0, &[&account, &name], |_| ())
    }

    fn create_community(&mut self, community: &str, name: &str) -> Result<(), String> {
        self.run(1, &[&community, &name], |_| ())
    }

    fn create_thread(
        &mut self,
        account: &str,
        community: &str,
        thread: &str,
        title: &str,
        text: &str,
    ) -> Result<(), String> {
        self.run(2, &[&account, &community, &thread, &title, &text], |_| ())
    }

    fn comment(&mut self, account: &str, thread: &str, text: &str) -> Result<u32, String> {
        self.run(3, &[&account, &thread, &text], |rows| {
            rows.first().map_or(0, |r| r.get::<_, i32>(0) as u32)
        })
    }

    fn page(&mut self, thread: &str, from: u32, n: u32) -> Result<usize, String> {
        let (from, n) = (from as i32, n as i32);
        self.run(4, &[&thread, &from, &n], |rows| {
            rows.first()
                .and_then(|r| r.get::<_, Option<String>>(0))
                .map_or(0, |json| json.len())
        })
    }

    fn listing(&mut self, community: &str, n: u64) -> Result<usize, String> {
        let n = n as i32;
        self.run(5, &[&community, &n], |rows| {
            rows.first()
                .and_then(|r| r.get::<_, Option<String>>(0))
                .map_or(0, |json| json.len())
        })
    }
}
