use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object(timeout = "2s")]
impl Account {
    pub fn total(&self) -> u32 {
        0
    }
}

fn main() {}
