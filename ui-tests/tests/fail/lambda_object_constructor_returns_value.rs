use crucial::store::{Cell, TxError};

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    #[constructor]
    pub fn open(&mut self, balance: i64) -> Result<i64, TxError> {
        self.balance.set(&balance)?;
        Ok(balance)
    }
}

fn main() {}
