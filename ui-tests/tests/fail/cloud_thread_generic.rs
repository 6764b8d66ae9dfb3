#[crucial::cloud_thread]
pub fn work<T: Default>(n: u64) -> u64 {
    let _ = T::default();
    n
}

fn main() {}
