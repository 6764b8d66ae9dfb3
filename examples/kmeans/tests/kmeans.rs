//! The k-means example: same cost as plain threads, `.npy` input, and a worker
//! that fails and is re-executed resumes at the shared iteration counter.

use kmeans::{parse_args, prepare, worker, Centroids};
use std::process::Command;

const SMALL: &[&str] = &[
    "--points",
    "20000",
    "--dims",
    "8",
    "--k",
    "6",
    "--iterations",
    "6",
];

fn final_cost(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("final cost: "))
        .unwrap_or_else(|| panic!("no cost in {stdout}"))
        .to_string()
}

#[test]
fn crucial_and_std_threads_reach_the_same_cost() {
    let crucial = Command::new(env!("CARGO_BIN_EXE_kmeans"))
        .args(SMALL)
        .env_remove("CRUCIAL_SERVER")
        .output()
        .unwrap();
    let std = Command::new(env!("CARGO_BIN_EXE_kmeans-std"))
        .args(SMALL)
        .output()
        .unwrap();
    assert_eq!(final_cost(&crucial), final_cost(&std));
    let printed = String::from_utf8_lossy(&crucial.stdout);
    assert_eq!(
        printed
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| iter"))
            .count(),
        6
    );
}

#[test]
fn points_written_to_npy_give_the_same_result() {
    let dir = std::env::temp_dir().join(format!("kmeans-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("points.npy");
    let file = file.to_str().unwrap();
    let generated = Command::new(env!("CARGO_BIN_EXE_kmeans"))
        .args(SMALL)
        .args(["--write-data", file])
        .output()
        .unwrap();
    let from_file = Command::new(env!("CARGO_BIN_EXE_kmeans-std"))
        .args(SMALL)
        .args(["--data", file])
        .output()
        .unwrap();
    assert_eq!(final_cost(&generated), final_cost(&from_file));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_worker_reexecuted_resumes_at_the_shared_iteration() {
    kmeans::link();
    let args = SMALL.iter().map(|s| s.to_string());
    let (mut params, _) = parse_args(args).unwrap();
    params.run = "resume".into();
    params.fail_once_at = Some((0, 3));
    prepare(&params).unwrap();
    let first = worker::spawn(params.clone(), 0);
    let other = worker::spawn(params.clone(), 1);
    let failure = first.join().unwrap_err().to_string();
    assert!(
        failure.contains("injected failure of worker 0 in iteration 3"),
        "{failure}"
    );
    // Re-execute worker 0 with the same input, as a retrying executor does.
    let retried = worker::spawn(params.clone(), 0).join().unwrap().unwrap();
    assert_eq!(retried.len(), 3, "resumed at iteration 3 of 6");
    assert_eq!(other.join().unwrap().unwrap().len(), 6);

    let history = Centroids::shared(params.key("centroids"))
        .history()
        .unwrap();
    assert_eq!(history.len(), 6);
    let std = Command::new(env!("CARGO_BIN_EXE_kmeans-std"))
        .args(SMALL)
        .output()
        .unwrap();
    assert_eq!(format!("{:.10e}", history[5].0), final_cost(&std));
}

#[test]
fn with_retries_a_worker_failing_once_still_gives_the_right_cost() {
    let out = Command::new(env!("CARGO_BIN_EXE_kmeans"))
        .args(SMALL)
        .args(["--fail-once-at", "1:2", "--attempts", "2"])
        .env_remove("CRUCIAL_SERVER")
        .output()
        .unwrap();
    let std = Command::new(env!("CARGO_BIN_EXE_kmeans-std"))
        .args(SMALL)
        .output()
        .unwrap();
    assert_eq!(final_cost(&out), final_cost(&std));
    // Without a retry the run fails and says which worker and why.
    let out = Command::new(env!("CARGO_BIN_EXE_kmeans"))
        .args(SMALL)
        .args(["--fail-once-at", "1:2"])
        .env_remove("CRUCIAL_SERVER")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kmeans::worker") && stderr.contains("injected failure"),
        "{stderr}"
    );
}
