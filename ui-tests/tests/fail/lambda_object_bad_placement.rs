use crucial::store::Cell;

#[crucial::lambda_object(placement = "node")]
pub struct Account {
    balance: Cell<i64>,
}

fn main() {}
