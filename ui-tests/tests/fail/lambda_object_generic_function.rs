use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    pub fn note<T: serde::Serialize>(&self, note: T) {
        let _ = note;
    }
}

fn main() {}
