// An `async` cloud thread with a reference argument: two errors, and the call
// to `work::spawn` in `main` adds none.
#[crucial::cloud_thread]
pub async fn work(name: &str) -> usize {
    name.len()
}

fn main() {
    let _ = work::spawn("ada");
}
