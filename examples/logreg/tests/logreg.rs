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

#[test]
fn data_files_give_their_shape_and_a_disagreeing_flag_is_refused() {
    let dir = std::env::temp_dir().join(format!("logreg-shape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join("d").to_string_lossy().into_owned();
    let written = Command::new(env!("CARGO_BIN_EXE_logreg-std"))
        .args(["--points", "400", "--dims", "7", "--iterations", "1"])
        .args(["--write-data", &prefix])
        .output()
        .unwrap();
    assert!(written.status.success());
    // The shape comes from the files' headers, not from the defaults.
    let (params, _) =
        logreg::parse_args(["--data".to_string(), prefix.clone()].into_iter()).unwrap();
    assert_eq!((params.data.points, params.data.dims), (400, 7));
    // A --points that disagrees with the file is an error naming the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_logreg"))
        .args(["--data", &prefix, "--points", "200000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--points 200000 disagrees") && stderr.contains("400 points x 7"),
        "{stderr}"
    );
    assert!(!stderr.contains("Error("), "Display, not Debug: {stderr}");
    // --help is help, not an error.
    let help = Command::new(env!("CARGO_BIN_EXE_logreg"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--data <PREFIX>"));
    std::fs::remove_dir_all(&dir).unwrap();
}
