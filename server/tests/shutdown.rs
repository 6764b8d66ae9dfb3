//! A clean stop: no new connections, the calls already read finish and are
//! answered, parked calls get `ShuttingDown`, pending replies are written.

mod common;

use common::{parked_on, wait_until, ServerProcess};
use crucial::{Config, Error, RemoteError, Semaphore};
use serde::{Deserialize, Serialize};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static STARTED: AtomicBool = AtomicBool::new(false);
static RELEASE: AtomicBool = AtomicBool::new(false);

/// A type whose one method holds its object until the test lets it go.
#[crucial::shared]
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Slow {
    runs: u64,
}

#[crucial::shared]
impl Slow {
    /// Says it runs, then waits for the test before completing.
    pub fn hold(&mut self) -> u64 {
        STARTED.store(true, Ordering::SeqCst);
        while !RELEASE.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.runs += 1;
        self.runs
    }
}

fn shutting_down(result: crucial::Result<impl std::fmt::Debug>) -> (String, String) {
    match result {
        Err(Error::Remote(RemoteError::ShuttingDown { key, method, .. })) => (key, method),
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
}

#[test]
fn a_clean_stop_finishes_calls_in_flight_and_answers_parked_ones() {
    let node = crucial_server::start(crucial_server::NodeConfig {
        listen: "127.0.0.1:0".into(),
        workers: 2,
        ..Default::default()
    })
    .unwrap();
    let addr = node.addr().to_string();
    let client = || {
        Config::new()
            .server(addr.clone())
            .retries(0)
            .connect()
            .unwrap()
    };
    let parked = {
        let gate = client().open::<Semaphore>("gate");
        std::thread::spawn(move || gate.acquire(1))
    };
    let watcher = client();
    wait_until("the acquire parks", || parked_on(&watcher, "gate") == 1);
    // (Listing objects waits for each object's lock, so it comes first.)
    let held = {
        let slow = client().open::<Slow>("slow");
        std::thread::spawn(move || slow.hold())
    };
    wait_until("the held call runs", || STARTED.load(Ordering::SeqCst));

    let stopping = std::thread::spawn(move || node.shutdown());
    wait_until("the node stops accepting", || {
        TcpStream::connect(&addr).is_err()
    });
    // The parked call is answered at once, while the other call still runs.
    let (key, method) = shutting_down(parked.join().unwrap());
    assert_eq!((key.as_str(), method.as_str()), ("gate", "acquire"));
    assert!(
        !stopping.is_finished(),
        "the stop waits for the call in flight"
    );
    RELEASE.store(true, Ordering::SeqCst);
    assert_eq!(
        held.join().unwrap().unwrap(),
        1,
        "the call in flight completed and its reply was written"
    );
    stopping.join().unwrap().unwrap();
}

#[test]
fn sigterm_stops_crucial_server_cleanly() {
    let mut server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    let parked = {
        let gate = client.open::<Semaphore>("gate");
        std::thread::spawn(move || gate.acquire(1))
    };
    wait_until("the acquire parks", || parked_on(&client, "gate") == 1);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (key, _) = shutting_down(parked.join().unwrap());
    assert_eq!(key, "gate");
    assert!(
        server.wait().success(),
        "the node exits 0 after a clean stop"
    );
}
