//! Passivation under `--memory-limit`, against a real node process: many
//! persistent objects touched in a loop stay under the limit (read from the
//! node's own metrics page while the loop runs), idle objects leave memory and
//! come back with their values, and a restart under the limit leaves what does
//! not fit on disk until it is called.

mod common;

use common::fixtures::Blob;
use common::{http_get, sample, DataDir, ServerProcess};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const OBJECTS: usize = 10_000;
const BYTES: usize = 2048;
/// A tenth of what the objects take.
const LIMIT: usize = OBJECTS * BYTES / 10;
const CALLERS: usize = 8;

fn start(dir: &DataDir) -> ServerProcess {
    let limit = LIMIT.to_string();
    ServerProcess::fixture_node_with(&[
        "--data-dir",
        dir.arg(),
        "--memory-limit",
        &limit,
        "--metrics",
        "127.0.0.1:0",
    ])
}

fn byte(i: usize, round: usize) -> u8 {
    ((i * 7 + round) % 251) as u8
}

/// Every object, split over `CALLERS` threads: check what the previous round
/// wrote (if any), then write this round's value (if `write`).
fn round(node: &ServerProcess, round: usize, write: bool) {
    let client = node.client();
    let threads: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in (caller..OBJECTS).step_by(CALLERS) {
                    let blob = client.open::<Blob>(&format!("blob-{i}"));
                    let (first, len, writes) = blob.check().expect("check");
                    if round > 0 {
                        assert_eq!(
                            (first, len, writes),
                            (Some(byte(i, round - 1)), BYTES, round as u64),
                            "blob-{i} after round {}",
                            round - 1
                        );
                    }
                    if write {
                        assert_eq!(
                            blob.fill(BYTES, byte(i, round)).expect("fill"),
                            round as u64 + 1
                        );
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("caller");
    }
}

/// Samples the node's resident object bytes every few milliseconds until
/// stopped; returns the highest sample.
fn watch(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        let mut highest: f64 = 0.0;
        while !stop.load(Ordering::Relaxed) {
            let (_, page) = http_get(&url);
            highest = highest.max(sample(&page, "crucial_resident_object_bytes"));
            std::thread::sleep(Duration::from_millis(10));
        }
        highest
    })
}

#[test]
fn many_persistent_objects_stay_under_the_memory_limit_and_keep_their_values() {
    let dir = DataDir::new("passivation");
    let mut node = start(&dir);
    let url = node.metrics.clone().expect("metrics address");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(url.clone(), Arc::clone(&stop));
    for r in 0..2 {
        round(&node, r, true);
    }
    stop.store(true, Ordering::Relaxed);
    let highest = watcher.join().expect("watcher");

    let (_, page) = http_get(&url);
    let peak = sample(&page, "crucial_resident_object_bytes_peak");
    let passivated = sample(&page, "crucial_passivated_objects");
    let activations = sample(&page, "crucial_activations_total");
    let rss = sample(&page, "process_resident_memory_bytes");
    println!(
        "limit {LIMIT} B for {} B of objects: highest sample {highest}, peak {peak}, \
         {passivated} passivated now, {activations} activations, node RSS {:.1} MB",
        OBJECTS * BYTES,
        rss / 1e6
    );
    assert!(peak <= LIMIT as f64, "peak {peak} over the limit {LIMIT}");
    assert!(highest <= LIMIT as f64);
    assert!(
        passivated as usize >= OBJECTS / 2,
        "most objects are on disk only: {passivated}"
    );
    // Round 1 read every object again, most of them from disk.
    assert!(
        activations as usize >= OBJECTS / 2,
        "{activations} activations"
    );

    // The listing tells which objects are in memory and how big they are.
    let listing = node.client().list_objects().expect("list");
    assert_eq!(listing.len(), OBJECTS);
    assert!(listing
        .iter()
        .all(|o| o.persistent && o.bytes as usize > BYTES));
    let resident = listing.iter().filter(|o| o.resident).count();
    assert!(
        resident > 0 && resident < OBJECTS / 2,
        "{resident} resident"
    );

    // After a crash, a restart under the limit leaves most objects on disk
    // until called, and every value is still the last one acknowledged.
    node.kill();
    let node = start(&dir);
    let (_, page) = http_get(node.metrics.as_ref().expect("metrics"));
    assert_eq!(sample(&page, "crucial_recovered_objects") as usize, OBJECTS);
    assert!(sample(&page, "crucial_passivated_objects") as usize >= OBJECTS / 2);
    assert!(sample(&page, "crucial_resident_object_bytes") <= LIMIT as f64);
    round(&node, 2, false);
    let (_, page) = http_get(node.metrics.as_ref().expect("metrics"));
    assert!(sample(&page, "crucial_resident_object_bytes_peak") <= LIMIT as f64);
}

#[test]
fn a_memory_limit_without_a_data_dir_is_refused() {
    let error = ServerProcess::try_start(common::fixture_command(
        "fixture-node",
        &["--memory-limit", "64M"],
    ))
    .err()
    .expect("refused");
    assert!(error.contains("needs a data directory"), "{error}");
}

#[test]
fn list_objects_prints_a_table_of_a_running_node() {
    let dir = DataDir::new("list-objects");
    let node = ServerProcess::fixture_node_with(&[
        "--data-dir",
        dir.arg(),
        "--memory-limit",
        "5000",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let client = node.client();
    client.open::<Blob>("first").fill(3000, 1).expect("fill");
    // (The passivator's clock ticks every 20 ms: "first" is then older.)
    std::thread::sleep(Duration::from_millis(100));
    client.open::<Blob>("second").fill(3000, 2).expect("fill");
    client
        .open::<common::fixtures::Faulty>("in-memory-only")
        .set(7)
        .expect("set");
    // The two blobs pass 90 % of 5000 bytes together: the older one leaves
    // memory, which brings the rest under 70 %.
    let url = node.metrics.clone().expect("metrics");
    common::wait_until("a blob is passivated", || {
        sample(&http_get(&url).1, "crucial_passivated_objects") >= 1.0
    });
    let output = std::process::Command::new(common::example_binary("fixture-node"))
        .args(["--list-objects", &node.addr])
        .output()
        .expect("run --list-objects");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "{stdout}");
    let columns = |key: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(key))
            .unwrap_or_else(|| panic!("no `{key}` in:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // TYPE KEY PERSISTENT IN-MEMORY BYTES PARKED STATE
    assert_eq!(&columns("first")[2..4], ["yes", "no"]);
    assert_eq!(&columns("second")[2..4], ["yes", "yes"]);
    assert!(columns("second")[4].parse::<u64>().expect("bytes") > 3000);
    assert_eq!(&columns("in-memory-only")[2..5], ["no", "yes", "-"]);
    assert!(stdout.contains("objects: 3, persistent: 2 ("), "{stdout}");
    assert!(stdout.contains("passivated: 1"), "{stdout}");
    // The passivated one comes back with its value.
    assert_eq!(
        client.open::<Blob>("first").check().expect("check"),
        (Some(1), 3000, 1)
    );
}
