#[crucial::cloud_thread]
pub async fn work(n: u64) -> u64 {
    n
}

fn main() {}
