//! The project's tasks, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`):
//!
//! * `test [ARGS]`: the README's test command. Makes sure etcd, which the
//!   cluster tests start as a real process, is on the machine (installs
//!   Debian's `etcd-server` when it may, else says in one line what to
//!   install and stops), then runs `cargo test --workspace [ARGS]`;
//! * `codegen [--check]`: regenerates the committed gRPC code from
//!   `server/proto/` (or checks that it is up to date).
//!
//! Only the standard library, so that a missing etcd is reported before
//! anything big is compiled.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask test [ARGS for cargo test] | cargo xtask codegen [--check]";

/// What the cluster tests need, and how to get it on Debian or Ubuntu.
const ETCD_PACKAGE: &str = "etcd-server";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let task = args.next();
    let rest: Vec<OsString> = args.collect();
    match task.as_ref().and_then(|t| t.to_str()) {
        Some("test") => test(&rest),
        Some("codegen") => codegen(&rest),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the workspace")
        .to_path_buf()
}

/// The exit code that passes a child's on.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        code => ExitCode::from(code.map_or(1, |c| c.clamp(1, 255) as u8)),
    }
}

fn status(mut command: Command) -> ExitCode {
    match command.status() {
        Ok(s) => exit_code(s),
        Err(e) => {
            eprintln!("error: cannot run {:?}: {e}", command.get_program());
            ExitCode::FAILURE
        }
    }
}

fn test(args: &[OsString]) -> ExitCode {
    if let Err(message) = ensure_etcd() {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let mut command = cargo();
    command.args(["test", "--workspace"]).args(args);
    let (code, counts) = run_counting_tests(command);
    eprintln!("{counts}");
    code
}

/// What `cargo test` said of its test binaries, summed.
#[derive(Default)]
struct TestCounts {
    binaries: u32,
    passed: u32,
    failed: u32,
    ignored: u32,
}

impl std::fmt::Display for TestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cargo xtask test: {} passed, {} failed, {} ignored, in {} test binaries and doctest runs",
            self.passed, self.failed, self.ignored, self.binaries
        )
    }
}

/// Runs `command`, passing its output through, and counts the tests from
/// its `test result:` lines.
fn run_counting_tests(mut command: Command) -> (ExitCode, TestCounts) {
    use std::io::{BufRead, BufReader, Write};
    command.stdout(std::process::Stdio::piped());
    let mut counts = TestCounts::default();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("error: cannot run {:?}: {e}", command.get_program());
            return (ExitCode::FAILURE, counts);
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(out, "{line}");
        if let Some(result) = line.strip_prefix("test result: ") {
            counts.binaries += 1;
            counts.passed += count(result, " passed");
            counts.failed += count(result, " failed");
            counts.ignored += count(result, " ignored");
        }
    }
    drop(out);
    let code = match child.wait() {
        Ok(s) => exit_code(s),
        Err(e) => {
            eprintln!("error: waiting for cargo test: {e}");
            ExitCode::FAILURE
        }
    };
    (code, counts)
}

/// `3` in `"ok. 3 passed; 0 failed"` for `" passed"`.
fn count(result: &str, what: &str) -> u32 {
    result
        .split(';')
        .find_map(|part| {
            let part = part.trim();
            let part = part
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ");
            part.strip_suffix(what)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn codegen(args: &[OsString]) -> ExitCode {
    let mut command = cargo();
    command
        .args(["run", "--quiet", "--package", "crucial-codegen", "--"])
        .args(args);
    status(command)
}

/// Finds etcd, or installs it when this user may install packages without
/// being asked for a password; otherwise the one line saying what to do.
fn ensure_etcd() -> Result<(), String> {
    if on_path("etcd").is_some() {
        return Ok(());
    }
    let missing = format!(
        "the cluster tests need etcd, which is not on PATH: install it with \
         `sudo apt-get install {ETCD_PACKAGE}` (Debian/Ubuntu) or put an etcd 3.4+ binary on PATH, \
         then run `cargo xtask test` again"
    );
    if std::env::var_os("CRUCIAL_NO_INSTALL").is_some() {
        return Err(missing);
    }
    let Some(sudo) = may_install() else {
        return Err(missing);
    };
    eprintln!(
        "etcd is not on PATH: installing Debian's {ETCD_PACKAGE} (the cluster tests start it)"
    );
    let apt = |args: &[&str]| {
        let mut command = Command::new(if sudo { "sudo" } else { "apt-get" });
        if sudo {
            command.args(["-n", "apt-get"]);
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command.status().is_ok_and(|s| s.success())
    };
    let installed = apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", ETCD_PACKAGE]);
    if installed && on_path("etcd").is_some() {
        Ok(())
    } else {
        Err(format!(
            "installing {ETCD_PACKAGE} failed (see above); {missing}"
        ))
    }
}

/// `Some(false)`: root with apt-get; `Some(true)`: apt-get through
/// password-less sudo; `None`: this user cannot install packages unasked.
fn may_install() -> Option<bool> {
    on_path("apt-get")?;
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if root {
        return Some(false);
    }
    let sudo = on_path("sudo").is_some()
        && Command::new("sudo")
            .args(["-n", "true"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    sudo.then_some(true)
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_are_read_from_cargo_tests_summary_line() {
        let line =
            "ok. 8 passed; 0 failed; 2 ignored; 0 measured; 1 filtered out; finished in 1.2s";
        assert_eq!(count(line, " passed"), 8);
        assert_eq!(count(line, " failed"), 0);
        assert_eq!(count(line, " ignored"), 2);
        assert_eq!(count("FAILED. 3 passed; 1 failed; 0 ignored", " failed"), 1);
    }
}
