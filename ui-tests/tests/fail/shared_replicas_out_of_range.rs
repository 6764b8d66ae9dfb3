#[crucial::shared(persistent, replicas = 0)]
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    value: u64,
}

fn main() {}
