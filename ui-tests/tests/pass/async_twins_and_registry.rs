use serde::{Deserialize, Serialize};

#[crucial::shared(name = "app::Centroids")]
#[derive(Default, Serialize, Deserialize)]
pub struct Centroids {
    sums: Vec<f64>,
}

#[crucial::shared]
impl Centroids {
    /// Adds a partial sum on the server.
    pub fn update(&mut self, partial: Vec<f64>) {
        self.sums = partial;
    }

    pub fn get(&self) -> Vec<f64> {
        self.sums.clone()
    }

    /// Associated functions without a receiver stay local.
    pub fn helper(n: usize) -> usize {
        n
    }
}

fn assert_send<T: Send + 'static>(_: &T) {}

fn main() {
    let proxy = Centroids::shared("c");
    let future = proxy.update_async(vec![1.0]);
    assert_send(&future);
    drop(future);
    assert_eq!(Centroids::helper(3), 3);
    let entry = crucial::__private::registry::registry()
        .shared_type("app::Centroids")
        .expect("registered");
    assert!(entry.method("get").unwrap().id.read_only);
    assert!(!entry.method("update").unwrap().id.read_only);
    assert!(entry.method("helper").is_none());
}
