use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Counter(Cell<u64>);

fn main() {}
