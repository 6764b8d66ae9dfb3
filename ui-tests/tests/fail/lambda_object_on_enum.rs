#[crucial::lambda_object]
pub enum Page {
    Draft,
    Published,
}

fn main() {}
