use crucial::store::{Cell, TxError};

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    /// `&self` functions read: the compiler refuses a write.
    pub fn reset(&self) -> Result<(), TxError> {
        self.balance.set(&0)
    }
}

fn main() {}
