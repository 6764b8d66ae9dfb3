//! Lambda-object fixtures shared by the integration tests (client side) and
//! the `fixture-node` example (the node that runs their functions): bank
//! accounts whose transfers are workflows over two objects, and functions
//! that misbehave on purpose.

#![allow(dead_code)]

use crucial::store::{join, Cell, Map, TxError, Workflow};
use crucial::ObjectId;
use serde::{Deserialize, Serialize};

/// A bank account. `version` counts the account's writes, so a history
/// checker can order the workflows that read and wrote it. Its objects are
/// kept with their application (one node, the application's failover):
/// the tests of that placement use it.
#[crucial::lambda_object(placement = "application")]
pub struct Account {
    owner: Cell<String>,
    balance: Cell<i64>,
    version: Cell<u64>,
}

/// What a transfer saw: each side's version and balance before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The account's version before the transfer wrote it.
    pub version: u64,
    /// Its balance before.
    pub balance: i64,
}

/// What an audit read: per account, its version and balance.
pub type Audit = Vec<(ObjectId, Seen)>;

#[crucial::lambda_object(time_limit = "2s")]
impl Account {
    /// Opens the account with a first deposit.
    #[constructor]
    pub fn open(&mut self, owner: String, balance: i64) -> Result<(), TxError> {
        self.owner.set(&owner)?;
        self.balance.set(&balance)?;
        self.version.set(&0)
    }

    /// The balance.
    pub fn balance(&self) -> Result<i64, TxError> {
        Ok(self.balance.get()?.unwrap_or(0))
    }

    /// The owner's name.
    pub fn owner(&self) -> Result<String, TxError> {
        Ok(self.owner.get()?.unwrap_or_default())
    }

    /// Version and balance, read in the workflow.
    pub fn seen(&self) -> Result<Seen, TxError> {
        Ok(Seen {
            version: self.version.get()?.unwrap_or(0),
            balance: self.balance.get()?.unwrap_or(0),
        })
    }

    /// Adds `amount` (negative: takes it) and returns what the account was
    /// before. Protected: only transfers move money.
    #[protected]
    pub fn credit(&mut self, amount: i64) -> Result<Seen, TxError> {
        let before = self.seen()?;
        if before.balance + amount < 0 {
            return Err(TxError::abort(format!(
                "insufficient funds: {} < {}",
                before.balance, -amount
            )));
        }
        self.balance.set(&(before.balance + amount))?;
        self.version.set(&(before.version + 1))?;
        Ok(before)
    }

    /// Moves `amount` from this account to `to`: the two credits are child
    /// calls, started together and joined. Returns what each side was
    /// before.
    pub async fn transfer(
        &mut self,
        wf: &Workflow,
        to: ObjectId,
        amount: i64,
    ) -> Result<(Seen, Seen), TxError> {
        let me = wf.this().expect("a method has an object").clone();
        let (from, to) = join(
            wf.at::<Account>(me).credit(-amount),
            wf.at::<Account>(to).credit(amount),
        )
        .await;
        Ok((from?, to?))
    }

    /// Changes the balance, then panics: nothing may be written.
    pub fn set_then_panic(&mut self, balance: i64) -> Result<(), TxError> {
        self.balance.set(&balance)?;
        panic!("boom after setting {balance}");
    }

    /// Spins for `ms` without touching storage (runs past its limit).
    #[time_limit = "100ms"]
    pub fn spin(&self, ms: u64) -> u64 {
        let start = std::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(ms) {
            n = n.wrapping_add(1);
        }
        n
    }

    /// Reads its balance in a loop until a read fails (the deadline).
    #[time_limit = "100ms"]
    pub fn read_forever(&self) -> Result<i64, TxError> {
        loop {
            self.balance.get()?;
        }
    }

    /// Reads its balance in a loop, under a limit shorter than its callers'.
    #[protected]
    #[time_limit = "50ms"]
    pub fn read_for_a_while(&self) -> Result<i64, TxError> {
        loop {
            self.balance.get()?;
        }
    }

    /// Calls `read_for_a_while` as a child: the child's own limit stops the
    /// workflow long before this function's 2 s.
    pub async fn call_a_slow_child(&self, wf: &Workflow) -> Result<i64, TxError> {
        let me = wf.this().expect("an account").clone();
        wf.at::<Account>(me).read_for_a_while().await
    }

    /// Reads every account of `accounts` in one workflow (a static function:
    /// no object of its own).
    pub async fn audit(wf: &Workflow, accounts: Vec<ObjectId>) -> Result<Audit, TxError> {
        let mut seen = Vec::with_capacity(accounts.len());
        for id in accounts {
            let s = wf.at::<Account>(&id).seen().await?;
            seen.push((id, s));
        }
        Ok(seen)
    }

    /// The workflow's clock and two random draws (the same on a re-execution).
    pub fn dice(wf: &Workflow) -> (u64, u64, u64) {
        (wf.unix_time_ms(), wf.random(), wf.random())
    }
}

/// A big object: a board of counters, one entry per key, to watch entry sets
/// split under contention.
#[crucial::lambda_object(placement = "application")]
pub struct Board {
    counters: Map<u32, u64>,
}

#[crucial::lambda_object]
impl Board {
    /// An empty board.
    #[constructor]
    pub fn create(&mut self) {}

    /// Adds one to counter `key`; returns the new value.
    pub fn bump(&mut self, key: u32) -> Result<u64, TxError> {
        let n = self.counters.get(&key)?.unwrap_or(0) + 1;
        self.counters.insert(&key, &n)?;
        Ok(n)
    }

    /// Every counter.
    pub fn counters(&self) -> Result<Vec<(u32, u64)>, TxError> {
        self.counters.entries()
    }
}

/// A bank account placed object by object (the default): in a cluster each
/// account lives on the node the ring gives it, and a transfer between
/// accounts of two nodes commits with two-phase commit.
#[crucial::lambda_object]
pub struct SpreadAccount {
    balance: Cell<i64>,
    version: Cell<u64>,
}

#[crucial::lambda_object(time_limit = "5s")]
impl SpreadAccount {
    /// Opens the account with a first deposit.
    #[constructor]
    pub fn open(&mut self, balance: i64) -> Result<(), TxError> {
        self.balance.set(&balance)?;
        self.version.set(&0)
    }

    /// Version and balance.
    pub fn seen(&self) -> Result<Seen, TxError> {
        Ok(Seen {
            version: self.version.get()?.unwrap_or(0),
            balance: self.balance.get()?.unwrap_or(0),
        })
    }

    /// Adds `amount` (negative: takes it); what the account was before.
    #[protected]
    pub fn credit(&mut self, amount: i64) -> Result<Seen, TxError> {
        let before = self.seen()?;
        if before.balance + amount < 0 {
            return Err(TxError::abort("insufficient funds"));
        }
        self.balance.set(&(before.balance + amount))?;
        self.version.set(&(before.version + 1))?;
        Ok(before)
    }

    /// Moves `amount` from this account to `to` (on any node).
    pub async fn transfer(
        &mut self,
        wf: &Workflow,
        to: ObjectId,
        amount: i64,
    ) -> Result<(Seen, Seen), TxError> {
        let me = wf.this().expect("a method has an object").clone();
        let (from, to) = join(
            wf.at::<SpreadAccount>(me).credit(-amount),
            wf.at::<SpreadAccount>(to).credit(amount),
        )
        .await;
        Ok((from?, to?))
    }

    /// Credits `amount` to `to`, from this account's function: sent to this
    /// account's node, the call reaches a third one.
    #[protected]
    pub async fn pass_on(&self, wf: &Workflow, to: ObjectId, amount: i64) -> Result<Seen, TxError> {
        wf.at::<SpreadAccount>(to).credit(amount).await
    }

    /// Moves `amount` from this account to `to` through `via`'s `pass_on`.
    pub async fn transfer_via(
        &mut self,
        wf: &Workflow,
        via: ObjectId,
        to: ObjectId,
        amount: i64,
    ) -> Result<(Seen, Seen), TxError> {
        let me = wf.this().expect("a method has an object").clone();
        let from = wf.at::<SpreadAccount>(me).credit(-amount).await?;
        let to = wf.at::<SpreadAccount>(via).pass_on(to, amount).await?;
        Ok((from, to))
    }

    /// Reads every account of `accounts` in one workflow, wherever they are.
    pub async fn audit(wf: &Workflow, accounts: Vec<ObjectId>) -> Result<Audit, TxError> {
        let mut seen = Vec::with_capacity(accounts.len());
        for id in accounts {
            let s = wf.at::<SpreadAccount>(&id).seen().await?;
            seen.push((id, s));
        }
        Ok(seen)
    }
}
