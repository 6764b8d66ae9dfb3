use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    pub fn map(&self) -> u32 {
        0
    }
}

fn main() {}
