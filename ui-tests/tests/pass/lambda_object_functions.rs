//! Every kind of function: constructors, reads, writes, static functions,
//! `async` ones joining child calls, protected ones, time limits, the
//! workflow parameter; and the generated client and in-workflow handles.

use crucial::store::{join, join_all, Cell, Set, TxError, Workflow};
use crucial::ObjectId;

#[crucial::lambda_object]
pub struct Account {
    name: Cell<String>,
    threads: Set<ObjectId>,
}

#[crucial::lambda_object]
pub struct Thread {
    title: Cell<String>,
    replies: Cell<u32>,
}

#[crucial::lambda_object(time_limit = "2s")]
impl Account {
    /// Makes the account.
    #[constructor]
    pub fn create(&mut self, name: String) -> Result<(), TxError> {
        self.name.set(&name)
    }

    pub fn name(&self) -> Result<String, TxError> {
        Ok(self.name.get()?.unwrap_or_default())
    }

    /// Creates a thread and remembers it: a child constructor call.
    pub async fn post(&mut self, wf: &Workflow, key: String, title: String) -> Result<ObjectId, TxError> {
        let thread = wf.at::<Thread>(key);
        let id = thread.id().clone();
        thread.create(title).await?;
        self.threads.insert(&id)?;
        Ok(id)
    }

    /// Replies to every thread of the account at once.
    pub async fn reply_all(&self, wf: &Workflow) -> Result<u32, TxError> {
        let threads = self.threads.values()?;
        let replies = join_all(threads.iter().map(|t| async move { wf.at::<Thread>(t).reply().await })).await;
        let mut total = 0;
        for n in replies {
            total += n?;
        }
        Ok(total)
    }

    /// Two reads at once.
    pub async fn pair(wf: &Workflow, a: ObjectId, b: ObjectId) -> Result<(String, String), TxError> {
        let (a, b) = join(wf.at::<Account>(a).name(), wf.at::<Account>(b).name()).await;
        Ok((a?, b?))
    }

    /// A plain value, no workflow parameter, its own time limit.
    #[time_limit = "50ms"]
    pub fn version() -> u32 {
        3
    }
}

#[crucial::lambda_object]
impl Thread {
    #[constructor]
    #[protected]
    pub fn create(&mut self, title: String) -> Result<(), TxError> {
        self.title.set(&title)
    }

    #[protected]
    pub fn reply(&mut self) -> Result<u32, TxError> {
        let n = self.replies.get()?.unwrap_or(0) + 1;
        self.replies.set(&n)?;
        Ok(n)
    }

    pub fn title(&self) -> Result<String, TxError> {
        Ok(self.title.get()?.unwrap_or_default())
    }
}

fn main() {
    // The client side, without calling anything.
    let account: AccountRef = Account::at("ann");
    assert_eq!(account.id().type_name, "Account");
    let _blocking: fn(&AccountRef) -> crucial::Result<String> = AccountRef::name;
    let _created = || -> crucial::Result<AccountRef> { Account::create("bob", "Bob".to_string()) };
    let _static = || -> crucial::Result<u32> { Account::version() };
    let _async = account.post_async("t1".to_string(), "Hello".to_string());
    let _title = Thread::at(ObjectId::new("x", "Thread", "t1")).title_async();
}
