//! The microblog of the LambdaStore paper on lambda objects: users follow
//! users, and a post is delivered to every follower's timeline — one child
//! call per follower, all started together and joined, in one transaction.
//!
//! `cargo run --release -p microblog` runs a mix of timeline reads, posts and
//! follows on the embedded node and checks that every post reached each of
//! its followers exactly once.

use crucial::store::{join_all, Cell, Map, Set, TxError, Workflow};
use crucial::ObjectId;
use serde::{Deserialize, Serialize};

/// A timeline entry: a post as its followers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The post.
    pub post: ObjectId,
    /// Its author.
    pub author: ObjectId,
    /// Its text.
    pub text: String,
    /// When it was posted (ms since the Unix epoch).
    pub time_ms: u64,
}

/// A user: who they follow, who follows them, and their timeline.
#[crucial::lambda_object]
pub struct User {
    name: Cell<String>,
    following: Set<ObjectId>,
    followers: Set<ObjectId>,
    timeline_len: Cell<u64>,
    timeline: Map<u64, Entry>,
    posts: Cell<u64>,
}

/// One post.
#[crucial::lambda_object]
pub struct Post {
    author: Cell<ObjectId>,
    text: Cell<String>,
    time_ms: Cell<u64>,
    delivered: Cell<u32>,
}

#[crucial::lambda_object(time_limit = "5s")]
impl User {
    /// A new user.
    #[constructor]
    pub fn create(&mut self, name: String) -> Result<(), TxError> {
        self.name.set(&name)?;
        self.timeline_len.set(&0)?;
        self.posts.set(&0)
    }

    /// Follows `other` (both sides change, in one transaction). Following
    /// twice, or oneself, changes nothing.
    pub async fn follow(&mut self, wf: &Workflow, other: ObjectId) -> Result<bool, TxError> {
        let me = wf.this().expect("a user").clone();
        if other == me || self.following.contains(&other)? {
            return Ok(false);
        }
        wf.at::<User>(&other).add_follower(me).await?;
        self.following.insert(&other)?;
        Ok(true)
    }

    /// Records a follower. Protected: only `follow` calls it.
    #[protected]
    pub fn add_follower(&mut self, follower: ObjectId) -> Result<(), TxError> {
        self.followers.insert(&follower)
    }

    /// Posts `text` as post `key`: creates the post, then delivers it to
    /// every follower at once (child calls joined together). Returns how many
    /// timelines it reached.
    pub async fn post(&mut self, wf: &Workflow, key: String, text: String) -> Result<u32, TxError> {
        let me = wf.this().expect("a user").clone();
        let followers = self.followers.values()?;
        let post = wf.at::<Post>(key);
        let entry = Entry {
            post: post.id().clone(),
            author: me.clone(),
            text: text.clone(),
            time_ms: wf.unix_time_ms(),
        };
        post.create(me, text, entry.time_ms, followers.len() as u32)
            .await?;
        let deliveries = join_all(followers.iter().map(|f| {
            let entry = entry.clone();
            async move { wf.at::<User>(f).deliver(entry).await }
        }))
        .await;
        for delivered in deliveries {
            delivered?;
        }
        let posts = self.posts.get()?.unwrap_or(0);
        self.posts.set(&(posts + 1))?;
        Ok(followers.len() as u32)
    }

    /// Appends a post to the timeline. Protected: only `post` calls it.
    #[protected]
    pub fn deliver(&mut self, entry: Entry) -> Result<(), TxError> {
        let n = self.timeline_len.get()?.unwrap_or(0) + 1;
        self.timeline_len.set(&n)?;
        self.timeline.insert(&n, &entry)
    }

    /// The newest `n` timeline entries, newest first.
    pub fn timeline(&self, n: u64) -> Result<Vec<Entry>, TxError> {
        let len = self.timeline_len.get()?.unwrap_or(0);
        let mut entries: Vec<Entry> = self
            .timeline
            .range(len.saturating_sub(n) + 1..=len)?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        entries.reverse();
        Ok(entries)
    }

    /// Everything the check needs: who the user follows, and every entry.
    pub fn audit(&self) -> Result<(Vec<ObjectId>, u64, Vec<Entry>), TxError> {
        Ok((
            self.following.values()?,
            self.timeline_len.get()?.unwrap_or(0),
            self.timeline
                .entries()?
                .into_iter()
                .map(|(_, e)| e)
                .collect(),
        ))
    }

    /// Users following this one.
    pub fn follower_count(&self) -> Result<u64, TxError> {
        Ok(self.followers.values()?.len() as u64)
    }
}

#[crucial::lambda_object(time_limit = "5s")]
impl Post {
    /// A post. Protected: only `User::post` makes one.
    #[constructor]
    #[protected]
    pub fn create(
        &mut self,
        author: ObjectId,
        text: String,
        time_ms: u64,
        delivered: u32,
    ) -> Result<(), TxError> {
        self.author.set(&author)?;
        self.text.set(&text)?;
        self.time_ms.set(&time_ms)?;
        self.delivered.set(&delivered)
    }

    /// Its author and the number of timelines it was delivered to.
    pub fn delivery(&self) -> Result<(ObjectId, u32), TxError> {
        Ok((
            self.author
                .get()?
                .ok_or_else(|| TxError::abort("a post without author"))?,
            self.delivered.get()?.unwrap_or(0),
        ))
    }
}

/// Referenced from each binary's `main` so the linker keeps this crate's
/// registrations (see the guide, "Binaries and the linker").
#[inline(never)]
pub fn link() {
    crucial_server::link();
}
