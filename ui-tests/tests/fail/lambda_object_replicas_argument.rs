use crucial::store::Cell;

#[crucial::lambda_object(replicas = 3)]
pub struct Account {
    balance: Cell<i64>,
}

fn main() {}
