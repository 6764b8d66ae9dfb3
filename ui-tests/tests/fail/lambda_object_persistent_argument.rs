use crucial::store::Cell;

#[crucial::lambda_object(persistent)]
pub struct Account {
    balance: Cell<i64>,
}

fn main() {}
