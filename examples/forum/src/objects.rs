//! CloudForum's lambda objects (the LambdaStore paper's Listing 1 and 2):
//! accounts, communities, threads. Creating a thread and commenting are
//! workflows across several objects; each runs as one transaction.

use crucial::store::{join, Cell, Map, Set, TxError, Workflow};
use crucial::ObjectId;
use serde::{Deserialize, Serialize};

/// One comment, stored in its thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// The account that wrote it.
    pub author_id: ObjectId,
    /// The author's name when it was written.
    pub author_name: String,
    /// What it says.
    pub text: String,
    /// When, by the workflow's clock (ms since the Unix epoch).
    pub time_ms: u64,
}

/// A community's listing entry of one thread.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The thread.
    pub thread: ObjectId,
    /// Its title.
    pub title: String,
    /// Its author's name.
    pub author_name: String,
    /// When it was created (ms since the Unix epoch).
    pub time_ms: u64,
}

/// A page of a thread: the title, the text, the comment count and comments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// The thread's title.
    pub title: String,
    /// Its text.
    pub text: String,
    /// Comments in the thread.
    pub comment_count: u32,
    /// The page's comments, with their numbers.
    pub comments: Vec<(u32, Comment)>,
}

// ANCHOR: types
/// A user.
#[crucial::lambda_object]
pub struct Account {
    name: Cell<String>,
    threads: Set<ObjectId>,
    comments: Set<(ObjectId, u32)>,
}

/// A community: its threads, newest last.
#[crucial::lambda_object]
pub struct Community {
    name: Cell<String>,
    thread_count: Cell<u64>,
    by_number: Map<u64, IndexEntry>,
}

/// A thread and its comments.
#[crucial::lambda_object]
pub struct Thread {
    author_name: Cell<String>,
    community_id: Cell<ObjectId>,
    author_id: Cell<ObjectId>,
    title: Cell<String>,
    text: Cell<String>,
    comment_count: Cell<u32>,
    comments: Map<u32, Comment>,
}
// ANCHOR_END: types

#[crucial::lambda_object(time_limit = "2s")]
impl Account {
    /// A new account.
    #[constructor]
    pub fn create(&mut self, name: String) -> Result<(), TxError> {
        self.name.set(&name)
    }

    /// The account's name.
    pub fn name(&self) -> Result<String, TxError> {
        Ok(self.name.get()?.unwrap_or_default())
    }

    // ANCHOR: create_thread
    /// Starts a thread named `key` in `community`: creates the thread and
    /// indexes it in its community (two child calls, joined), and records it
    /// here. One transaction: all three objects change, or none.
    pub async fn create_thread(
        &mut self,
        wf: &Workflow,
        community: ObjectId,
        key: String,
        title: String,
        text: String,
    ) -> Result<ObjectId, TxError> {
        let me = wf.this().expect("an account").clone();
        let name = self.name()?;
        let thread = wf.at::<Thread>(key);
        let id = thread.id().clone();
        let entry = IndexEntry {
            thread: id.clone(),
            title: title.clone(),
            author_name: name.clone(),
            time_ms: wf.unix_time_ms(),
        };
        let (created, indexed) = join(
            thread.create(community.clone(), me, name, title, text),
            wf.at::<Community>(community).index(entry),
        )
        .await;
        created?;
        indexed?;
        self.threads.insert(&id)?;
        Ok(id)
    }
    // ANCHOR_END: create_thread

    // ANCHOR: create_comment
    /// Comments on `thread` (the paper's Listing 2): the thread stores the
    /// comment and numbers it; the account remembers the reference.
    pub async fn create_comment(
        &mut self,
        wf: &Workflow,
        thread: ObjectId,
        text: String,
    ) -> Result<u32, TxError> {
        let me = wf.this().expect("an account").clone();
        let name = self.name()?;
        let number = wf.at::<Thread>(&thread).add_comment(me, name, text).await?;
        self.comments.insert(&(thread, number))?;
        Ok(number)
    }
    // ANCHOR_END: create_comment

    /// The account's comments: (thread, comment number).
    pub fn comments(&self) -> Result<Vec<(ObjectId, u32)>, TxError> {
        self.comments.values()
    }

    /// The threads the account started.
    pub fn threads(&self) -> Result<Vec<ObjectId>, TxError> {
        self.threads.values()
    }
}

#[crucial::lambda_object(time_limit = "2s")]
impl Community {
    /// A new community.
    #[constructor]
    pub fn create(&mut self, name: String) -> Result<(), TxError> {
        self.name.set(&name)?;
        self.thread_count.set(&0)
    }

    /// Adds a thread to the listing. Protected: threads are created by
    /// `Account::create_thread` only.
    #[protected]
    pub fn index(&mut self, entry: IndexEntry) -> Result<u64, TxError> {
        let n = self.thread_count.get()?.unwrap_or(0) + 1;
        self.thread_count.set(&n)?;
        self.by_number.insert(&n, &entry)?;
        Ok(n)
    }

    /// The newest `n` threads, newest first (a range scan of `n` entries).
    pub fn latest(&self, n: u64) -> Result<Vec<IndexEntry>, TxError> {
        let count = self.thread_count.get()?.unwrap_or(0);
        let from = count.saturating_sub(n) + 1;
        let mut entries: Vec<IndexEntry> = self
            .by_number
            .range(from..=count)?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        entries.reverse();
        Ok(entries)
    }

    /// Threads in the community.
    pub fn thread_count(&self) -> Result<u64, TxError> {
        Ok(self.thread_count.get()?.unwrap_or(0))
    }
}

#[crucial::lambda_object(time_limit = "2s")]
impl Thread {
    /// A new thread. Protected: only `Account::create_thread` makes one, so
    /// every thread is in its community's listing.
    #[constructor]
    #[protected]
    pub fn create(
        &mut self,
        community: ObjectId,
        author: ObjectId,
        author_name: String,
        title: String,
        text: String,
    ) -> Result<(), TxError> {
        self.community_id.set(&community)?;
        self.author_id.set(&author)?;
        self.author_name.set(&author_name)?;
        self.title.set(&title)?;
        self.text.set(&text)?;
        self.comment_count.set(&0)
    }

    // ANCHOR: add_comment
    /// Stores a comment under the next number (the paper's `add_comment`).
    #[protected]
    pub fn add_comment(
        &mut self,
        wf: &Workflow,
        author_id: ObjectId,
        author_name: String,
        text: String,
    ) -> Result<u32, TxError> {
        let number = self.comment_count.get()?.unwrap_or(0) + 1;
        self.comment_count.set(&number)?;
        let comment = Comment {
            author_id,
            author_name,
            text,
            time_ms: wf.unix_time_ms(),
        };
        self.comments.insert(&number, &comment)?;
        Ok(number)
    }
    // ANCHOR_END: add_comment

    /// Comments `from..from + n` with the thread's title and text.
    pub fn page(&self, from: u32, n: u32) -> Result<Page, TxError> {
        Ok(Page {
            title: self.title.get()?.unwrap_or_default(),
            text: self.text.get()?.unwrap_or_default(),
            comment_count: self.comment_count.get()?.unwrap_or(0),
            comments: self.comments.range(from..from.saturating_add(n))?,
        })
    }

    /// One comment.
    pub fn comment(&self, number: u32) -> Result<Option<Comment>, TxError> {
        self.comments.get(&number)
    }

    /// The comment counter and the comments actually stored (equal, always).
    pub fn counts(&self) -> Result<(u32, u32), TxError> {
        Ok((
            self.comment_count.get()?.unwrap_or(0),
            self.comments.entries()?.len() as u32,
        ))
    }
}
