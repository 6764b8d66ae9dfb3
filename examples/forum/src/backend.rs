//! The forum on lambda objects: each operation of the load generator is one
//! client call, which runs as one workflow next to the objects it touches.

use crate::load::{Backend, Keys, Session};
use crate::objects::{Account, Community, Thread};
use crucial::{Client, ObjectId};

/// The lambda-object forum behind `client`.
pub struct LambdaForum {
    client: Client,
}

impl LambdaForum {
    /// The forum behind `client`.
    pub fn new(client: Client) -> LambdaForum {
        LambdaForum { client }
    }

    /// The forum behind the global client (the embedded node by default, or
    /// `CRUCIAL_SERVER`).
    pub fn global() -> crucial::Result<LambdaForum> {
        Ok(LambdaForum::new(
            crucial::Context::global()?.client().clone(),
        ))
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Backend for LambdaForum {
    fn session(&self) -> Result<Box<dyn Session>, String> {
        Ok(Box::new(LambdaSession(self.client.clone())))
    }

    fn retries(&self) -> u64 {
        self.client
            .workflow_stats()
            .map_or(0, |s| s.executions.saturating_sub(s.committed + s.given_up))
    }
}

struct LambdaSession(Client);

impl LambdaSession {
    fn account(&self, key: &str) -> crate::objects::AccountRef {
        Account::at(key).with_client(self.0.clone())
    }
}

fn id<T: crucial::__private::store::LambdaObject>(key: &str) -> ObjectId {
    ObjectId::new(T::APPLICATION, T::TYPE_NAME, key)
}

impl Session for LambdaSession {
    fn create_account(&mut self, account: &str, name: &str) -> Result<(), String> {
        self.account(account)
            .create(name.into())
            .map_err(|e| e.to_string())
    }

    fn create_community(&mut self, community: &str, name: &str) -> Result<(), String> {
        Community::at(community)
            .with_client(self.0.clone())
            .create(name.into())
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
        self.account(account)
            .create_thread(
                id::<Community>(community),
                thread.into(),
                title.into(),
                text.into(),
            )
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn comment(&mut self, account: &str, thread: &str, text: &str) -> Result<u32, String> {
        self.account(account)
            .create_comment(id::<Thread>(thread), text.into())
            .map_err(|e| e.to_string())
    }

    fn page(&mut self, thread: &str, from: u32, n: u32) -> Result<usize, String> {
        Thread::at(thread)
            .with_client(self.0.clone())
            .page(from, n)
            .map(|p| p.comments.len())
            .map_err(|e| e.to_string())
    }

    fn listing(&mut self, community: &str, n: u64) -> Result<usize, String> {
        Community::at(community)
            .with_client(self.0.clone())
            .latest(n)
            .map(|l| l.len())
            .map_err(|e| e.to_string())
    }
}

/// What the invariant check counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Threads checked.
    pub threads: usize,
    /// Comments stored in them.
    pub comments: u64,
    /// Accounts whose comment references all resolved.
    pub accounts: usize,
    /// Threads listed by the communities.
    pub listed: u64,
}

/// Checks the forum's invariants after a run: every thread's comment counter
/// equals the comments it stores, every comment an account remembers is in
/// its thread with that account as author, and the communities list every
/// thread once.
pub fn check(client: &Client, keys: &Keys) -> Result<Checked, String> {
    let fail = |e: crucial::Error| e.to_string();
    let mut comments = 0;
    for t in &keys.threads {
        let (count, stored) = Thread::at(t.as_str())
            .with_client(client.clone())
            .counts()
            .map_err(fail)?;
        if count != stored {
            return Err(format!(
                "thread {t}: counter says {count}, {stored} comments stored"
            ));
        }
        comments += u64::from(stored);
    }
    let mut remembered = 0;
    for a in &keys.accounts {
        let account = Account::at(a.as_str()).with_client(client.clone());
        for (thread, number) in account.comments().map_err(fail)? {
            let comment = Thread::at(&thread)
                .with_client(client.clone())
                .comment(number)
                .map_err(fail)?
                .ok_or_else(|| format!("account {a}: comment {number} of {thread} is missing"))?;
            if &comment.author_id != account.id() {
                return Err(format!(
                    "account {a}: comment {number} of {thread} is by {}",
                    comment.author_id
                ));
            }
            remembered += 1;
        }
    }
    if remembered != comments {
        return Err(format!(
            "{comments} comments stored, {remembered} remembered by their authors"
        ));
    }
    let mut listed = 0;
    for c in &keys.communities {
        listed += Community::at(c.as_str())
            .with_client(client.clone())
            .thread_count()
            .map_err(fail)?;
    }
    if listed != keys.threads.len() as u64 {
        return Err(format!("{} threads, {listed} listed", keys.threads.len()));
    }
    Ok(Checked {
        threads: keys.threads.len(),
        comments,
        accounts: keys.accounts.len(),
        listed,
    })
}
