use crucial::store::{Cell, TxError};

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    #[constructor]
    pub fn open(&self, balance: i64) -> Result<(), TxError> {
        let _ = balance;
        Ok(())
    }
}

fn main() {}
