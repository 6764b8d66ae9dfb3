pub struct Worker;

impl Worker {
    #[crucial::cloud_thread]
    pub fn run(&self, n: u64) -> u64 {
        n
    }
}

fn main() {}
