use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    pub fn close(self) {}
}

fn main() {}
