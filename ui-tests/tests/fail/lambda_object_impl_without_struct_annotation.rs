pub struct Account {
    balance: i64,
}

#[crucial::lambda_object]
impl Account {
    pub fn balance(&self) -> i64 {
        self.balance
    }
}

fn main() {}
