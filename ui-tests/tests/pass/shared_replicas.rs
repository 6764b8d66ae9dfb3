//! `replicas = N` on a persistent object sets its registry entry's copies;
//! without it, the type follows the cluster's default (0).

use crucial::__private::SharedType;

#[crucial::shared(persistent, replicas = 3)]
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    entries: Vec<u64>,
}

#[crucial::shared]
impl Ledger {
    pub fn push(&mut self, value: u64) {
        self.entries.push(value);
    }
}

#[crucial::shared(persistent)]
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Plain {
    value: u64,
}

#[crucial::shared]
impl Plain {
    pub fn get(&self) -> u64 {
        self.value
    }
}

fn main() {
    assert_eq!(<Ledger as SharedType>::REPLICAS, 3);
    assert_eq!(<Plain as SharedType>::REPLICAS, 0);
    let registry = crucial::__private::registry::registry();
    assert_eq!(registry.shared_type("Ledger").map(|e| e.replicas), Some(3));
}
