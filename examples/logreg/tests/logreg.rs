//! Logistic regression: learns, and matches the plain-threads version exactly.

use std::process::Command;

const SMALL: &[&str] = &["--points", "5000", "--dims", "10", "--iterations", "30"];

fn line(out: &std::process::Output, prefix: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {stdout}"))
        .to_string()
}

#[test]
fn learns_and_matches_plain_threads() {
    let crucial = Command::new(env!("CARGO_BIN_EXE_logreg"))
        .args(SMALL)
        .env_remove("CRUCIAL_SERVER")
        .output()
        .unwrap();
    let std = Command::new(env!("CARGO_BIN_EXE_logreg-std"))
        .args(SMALL)
        .output()
        .unwrap();
    assert_eq!(line(&crucial, "final loss: "), line(&std, "final loss: "));
    let accuracy: f64 = line(&crucial, "final accuracy: ").parse().unwrap();
    assert!(accuracy > 0.8, "accuracy {accuracy}");
    let first: f64 = String::from_utf8_lossy(&crucial.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("| 0 | "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    let last: f64 = line(&crucial, "final loss: ").parse().unwrap();
    assert!(last < first * 0.8, "loss went from {first} to {last}");
}

#[test]
fn points_written_to_npy_give_the_same_result() {
    let dir = std::env::temp_dir().join(format!("logreg-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join("points");
    let prefix = prefix.to_str().unwrap();
    let generated = Command::new(env!("CARGO_BIN_EXE_logreg-std"))
        .args(SMALL)
        .args(["--write-data", prefix])
        .output()
        .unwrap();
    let from_files = Command::new(env!("CARGO_BIN_EXE_logreg"))
        .args(SMALL)
        .args(["--data", prefix])
        .output()
        .unwrap();
    assert_eq!(
        line(&generated, "final loss: "),
        line(&from_files, "final loss: ")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
