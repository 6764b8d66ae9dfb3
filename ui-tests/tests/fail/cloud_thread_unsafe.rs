#[crucial::cloud_thread]
pub unsafe fn work(n: u64) -> u64 {
    n
}

fn main() {}
