//! `placement = "object"` (the default) and `placement = "application"` on
//! lambda object types.

use crucial::__private::store::LambdaObject;
use crucial::store::{Cell, TxError};

#[crucial::lambda_object(placement = "object")]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    #[constructor]
    pub fn open(&mut self, balance: i64) -> Result<(), TxError> {
        self.balance.set(&balance)
    }
}

#[crucial::lambda_object(placement = "application")]
pub struct Ledger {
    entries: Cell<u64>,
}

#[crucial::lambda_object]
pub struct Counter {
    value: Cell<i64>,
}

fn main() {
    assert!(<Account as LambdaObject>::BY_OBJECT);
    assert!(<Counter as LambdaObject>::BY_OBJECT, "the default");
    assert!(!<Ledger as LambdaObject>::BY_OBJECT);
}
