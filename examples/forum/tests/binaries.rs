//! The example's binaries, run as processes: the load generator on the
//! embedded default, and against a separate `forum-server`, under a skewed
//! mix; the invariants hold after each concurrent run.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run binary");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{:?} failed: {stdout}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn committed(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("all "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no total in {stdout}"))
}

#[test]
fn the_mix_runs_on_the_embedded_default_and_the_invariants_hold() {
    let stdout = run(Command::new(env!("CARGO_BIN_EXE_forum"))
        .args([
            "--seconds",
            "0.5",
            "--clients",
            "4",
            "--accounts",
            "20",
            "--threads",
            "20",
        ])
        .env_remove("CRUCIAL_SERVER"));
    assert!(stdout.contains("invariants hold"), "{stdout}");
    assert!(committed(&stdout) > 0, "{stdout}");
}

#[test]
fn a_skewed_mix_on_a_separate_node_keeps_the_invariants() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_forum-server"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start forum-server");
    let stdout = server.stdout.take().expect("stdout");
    let addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("listening on ")
                .nth(1)
                .map(|a| a.trim().to_string())
        })
        .expect("the server's address");
    // Mostly writes, to a few hot threads and communities.
    let out = run(Command::new(env!("CARGO_BIN_EXE_forum"))
        .args([
            "--seconds",
            "0.5",
            "--clients",
            "8",
            "--skew",
            "4",
            "--mix",
            "20,10,50,20",
        ])
        .args(["--accounts", "30", "--communities", "3", "--threads", "10"])
        .env("CRUCIAL_SERVER", &addr));
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.contains("invariants hold"), "{out}");
    assert!(out.contains(&format!("server: {addr}")), "{out}");
}

#[test]
fn the_server_binary_lists_the_forum_types_and_their_functions() {
    let listing = run(Command::new(env!("CARGO_BIN_EXE_forum-server")).arg("--list-types"));
    for expected in [
        "Account",
        "fn create_thread(&mut self, community: ObjectId, key: String, title: String, text: String) -> Result<ObjectId, TxError>",
        "protected constructor fn create(&mut self, community: ObjectId",
        "protected write fn add_comment(&mut self, author_id: ObjectId",
    ] {
        assert!(listing.contains(expected), "`{expected}` not in\n{listing}");
    }
}
