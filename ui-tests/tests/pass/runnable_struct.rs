use crucial::{cloud_thread, CloudThread, Runnable};
use serde::{Deserialize, Serialize};

#[cloud_thread]
#[derive(Serialize, Deserialize)]
pub struct PiEstimator {
    points: u64,
}

impl Runnable for PiEstimator {
    type Output = u64;

    fn run(self) -> u64 {
        self.points
    }
}

fn main() {
    assert!(<PiEstimator as crucial::RegisteredRunnable>::NAME.ends_with("::PiEstimator"));
    let _start = || CloudThread::spawn(PiEstimator { points: 10 }).join();
    assert!(crucial::__private::registry::registry()
        .cloud_thread(<PiEstimator as crucial::RegisteredRunnable>::NAME)
        .is_some());
}
