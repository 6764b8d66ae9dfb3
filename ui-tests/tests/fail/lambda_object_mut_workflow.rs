use crucial::store::{Cell, Workflow};

#[crucial::lambda_object]
pub struct Account {
    balance: Cell<i64>,
}

#[crucial::lambda_object]
impl Account {
    pub fn total(&self, wf: &mut Workflow) -> u64 {
        wf.random()
    }
}

fn main() {}
