//! Blocking methods and the synchronization objects, against a real node process.

mod common;

use common::ServerProcess;
use crucial::{Barrier, CountDownLatch, Error, RemoteError, Semaphore, SharedProxy};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pause(seed: &mut u64, max_micros: u64) {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    std::thread::sleep(Duration::from_micros(*seed % max_micros));
}

#[test]
fn a_barrier_never_releases_anyone_before_all_parties_arrive() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    const PARTIES: usize = 4;
    const GENERATIONS: usize = 40;
    assert!(client.create("b", &Barrier::new(PARTIES as u32)).unwrap());
    let arrivals = Arc::new(AtomicUsize::new(0));
    let leaders = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..PARTIES)
        .map(|i| {
            let barrier = client.open::<Barrier>("b");
            let (arrivals, leaders) = (Arc::clone(&arrivals), Arc::clone(&leaders));
            std::thread::spawn(move || {
                let mut seed = 0x1234_5678 + i as u64;
                for generation in 0..GENERATIONS {
                    pause(&mut seed, 2000);
                    arrivals.fetch_add(1, Ordering::SeqCst);
                    let result = barrier.wait().unwrap();
                    let seen = arrivals.load(Ordering::SeqCst);
                    assert!(
                        seen >= PARTIES * (generation + 1),
                        "released in generation {generation} after only {seen} arrivals"
                    );
                    if result.is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        leaders.load(Ordering::SeqCst),
        GENERATIONS,
        "one leader per generation"
    );
    let barrier = client.open::<Barrier>("b");
    assert_eq!(barrier.generation().unwrap(), GENERATIONS as u64);
    assert_eq!(barrier.waiting().unwrap(), 0);
}

#[test]
fn a_semaphore_never_admits_more_than_its_permits() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    const PERMITS: usize = 3;
    client.create("s", &Semaphore::new(PERMITS as i64)).unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let semaphore = client.open::<Semaphore>("s");
            let (inside, most) = (Arc::clone(&inside), Arc::clone(&most));
            std::thread::spawn(move || {
                let mut seed = 0x9876_5432 + i as u64;
                for _ in 0..25 {
                    semaphore.acquire(1).unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    assert!(
                        now <= PERMITS,
                        "{now} threads inside a semaphore of {PERMITS}"
                    );
                    pause(&mut seed, 500);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    semaphore.release(1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "the test exercised concurrency"
    );
    assert_eq!(
        client.open::<Semaphore>("s").available_permits().unwrap(),
        PERMITS as i64
    );
}

#[test]
fn setting_a_future_wakes_every_waiter_once() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    let open = || client.open::<crucial::Future<String>>("f");
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let future = open();
            std::thread::spawn(move || future.get().unwrap())
        })
        .collect();
    common::wait_until("10 waiters park", || common::parked_on(&client, "f") == 10);
    let future = open();
    assert!(!future.is_done().unwrap());
    assert!(future.set(&"done".to_string()).unwrap());
    assert!(!future.set(&"again".to_string()).unwrap(), "set once");
    for w in waiters {
        assert_eq!(w.join().unwrap(), "done");
    }
    assert_eq!(future.get().unwrap(), "done");
}

#[test]
fn waits_time_out_with_a_clear_error_and_leave_nothing_behind() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    let semaphore = client.open::<Semaphore>("empty");
    let e = semaphore
        .acquire_timeout(1, Duration::from_millis(150))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Remote(RemoteError::Timeout { method, waited_ms: 150, .. }) if method == "acquire"),
        "{e}"
    );
    assert!(e.to_string().contains("timed out after 150 ms"), "{e}");
    // The timed-out acquire must not take a permit released later.
    semaphore.release(1).unwrap();
    assert!(semaphore.try_acquire(1).unwrap());

    let latch = client.open::<CountDownLatch>("l");
    client.delete("crucial::CountDownLatch", "l").unwrap();
    client.create("l", &CountDownLatch::new(2)).unwrap();
    assert!(matches!(
        latch.wait_timeout(Duration::from_millis(50)),
        Err(Error::Remote(RemoteError::Timeout { .. }))
    ));
    assert_eq!(latch.count_down().unwrap(), 1);
    assert_eq!(latch.count_down().unwrap(), 0);
    latch.wait_timeout(Duration::from_secs(5)).unwrap();

    // Deleting an object answers the calls parked on it.
    let waiting = {
        let semaphore = client.open::<Semaphore>("doomed");
        std::thread::spawn(move || semaphore.acquire(1))
    };
    common::wait_until("the acquire parks", || {
        common::parked_on(&client, "doomed") == 1
    });
    assert!(client.open::<Semaphore>("doomed").delete().unwrap());
    assert!(matches!(
        waiting.join().unwrap(),
        Err(Error::Remote(RemoteError::Deleted { .. }))
    ));
}

#[test]
fn a_parked_call_of_a_killed_client_disappears_and_blocks_nobody() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    let mut child = Command::new(common::example_binary("fixture-client"))
        .arg(&server.addr)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.contains("acquiring") {
            break;
        }
    }
    common::wait_until("the child's acquire parks", || {
        common::parked_on(&client, "gate") == 1
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // The node drops the dead client's parked call as soon as it sees the
    // connection close, before anything else happens to the object.
    common::wait_until("the dead client's call leaves", || {
        common::parked_on(&client, "gate") == 0
    });
    let semaphore = client.open::<Semaphore>("gate");
    semaphore.release(1).unwrap();
    // The dead client's parked acquire must not have taken the permit.
    semaphore
        .acquire_timeout(1, Duration::from_secs(5))
        .unwrap();
    assert_eq!(semaphore.available_permits().unwrap(), 0);
}

#[test]
fn a_thousand_parked_callers_on_one_barrier_are_released_together() {
    let server = ServerProcess::crucial_server(&[]);
    let client = server.client();
    const PARTIES: usize = 1000;
    client.create("big", &Barrier::new(PARTIES as u32)).unwrap();
    let barrier = client.open::<Barrier>("big");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..PARTIES - 1)
            .map(|_| tokio::spawn(barrier.wait_async()))
            .collect();
        // 999 calls are parked on the node, holding no thread there.
        let deadline = Instant::now() + Duration::from_secs(30);
        while barrier.waiting_async().await.unwrap() < (PARTIES - 1) as u32 {
            assert!(Instant::now() < deadline, "callers did not park");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let last = barrier.wait_async().await.unwrap();
        let mut results = vec![last];
        for t in tasks {
            results.push(t.await.unwrap().unwrap());
        }
        results
    });
    assert_eq!(results.len(), PARTIES);
    assert_eq!(results.iter().filter(|r| r.is_leader()).count(), 1);
    assert!(results[0].is_leader(), "the last to arrive leads");
    assert_eq!(barrier.generation().unwrap(), 1);
}
