use crucial::store::Cell;

#[crucial::lambda_object]
pub struct Holder<T> {
    value: Cell<T>,
}

fn main() {}
