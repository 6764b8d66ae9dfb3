// The same rule as for #[shared] methods: a reference anywhere in an argument.
#[crucial::cloud_thread]
pub fn work(pair: (u64, &'static str)) -> u64 {
    pair.0
}

fn main() {}
