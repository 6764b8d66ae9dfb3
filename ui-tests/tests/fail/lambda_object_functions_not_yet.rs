use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    pub fn balance(&self) -> i64 {
        0
    }
}

fn main() {}
