#[crucial::shared]
pub fn counter() -> i64 {
    0
}

fn main() {}
