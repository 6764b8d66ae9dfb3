use crucial::store::Cell;

pub struct Secret(u64);

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    pub fn unlock(&self, secret: Secret) -> bool {
        secret.0 == 42
    }
}

fn main() {}
