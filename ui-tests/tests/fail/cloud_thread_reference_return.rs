#[crucial::cloud_thread]
pub fn work(n: u64) -> &'static str {
    if n > 0 { "some" } else { "none" }
}

fn main() {}
