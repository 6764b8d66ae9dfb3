use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Thread {
    title: String,
    views: Cell<u64>,
}

fn main() {}
