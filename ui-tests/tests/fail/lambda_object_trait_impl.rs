use crucial::store::Cell;

pub trait Audited {
    fn audit(&self) -> u32;
}

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Audited for Account {
    fn audit(&self) -> u32 {
        0
    }
}

fn main() {}
