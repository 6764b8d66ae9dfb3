#[crucial::shared(replicas = 2)]
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    value: u64,
}

fn main() {}
