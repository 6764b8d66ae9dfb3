#[crucial::shared]
pub trait Counter {
    fn add(&mut self, n: i64);
}

fn main() {}
