//! The example's binaries, run as processes: every binary sees every annotated
//! item (the linker kept the registrations), and the client works on the embedded
//! default, against a separate `pi-server`, and through `pi-function`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run binary");
    assert!(
        out.status.success(),
        "{:?} failed: {}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn estimate(stdout: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("pi ~= "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in {stdout}"))
}

#[test]
fn server_binary_lists_example_and_builtin_types() {
    let listing = run(Command::new(env!("CARGO_BIN_EXE_pi-server")).arg("--list-types"));
    for expected in [
        "type Tally",
        "write fn record(&mut self, inside: u64, total: u64)",
        "read  fn estimate(&self) -> f64",
        "type crucial::AtomicI64",
        "type crucial::AtomicBytes",
        "type crucial::List",
        "type crucial::Map",
        "cloud_thread pi::estimate",
    ] {
        assert!(
            listing.contains(expected),
            "missing `{expected}` in:\n{listing}"
        );
    }
}

#[test]
fn function_binary_lists_the_cloud_thread() {
    let listing = run(Command::new(env!("CARGO_BIN_EXE_pi-function")).arg("--list"));
    assert_eq!(listing.trim(), "pi::estimate");
}

#[test]
fn client_runs_on_the_embedded_default() {
    let out = run(Command::new(env!("CARGO_BIN_EXE_pi"))
        .args(["4", "2000000"])
        .env_remove("CRUCIAL_SERVER"));
    assert!(
        (estimate(&out) - std::f64::consts::PI).abs() < 0.01,
        "{out}"
    );
    assert!(out.contains("from 4 threads"), "{out}");
    assert!(out.contains("embedded at 127.0.0.1:"), "{out}");
}

struct Server(std::process::Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_pi_server() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pi-server"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().to_string();
        }
    };
    Server(child, addr)
}

#[test]
fn client_runs_against_a_separate_server_twice() {
    let server = start_pi_server();
    for _ in 0..2 {
        // The second run reuses the server's objects: the client resets them.
        let out = run(Command::new(env!("CARGO_BIN_EXE_pi"))
            .args(["4", "1000000"])
            .env("CRUCIAL_SERVER", &server.1));
        assert!(
            (estimate(&out) - std::f64::consts::PI).abs() < 0.01,
            "{out}"
        );
        assert!(out.contains(&format!("server: {}", server.1)), "{out}");
        assert!(out.contains("from 4 threads"), "{out}");
    }
}

#[test]
fn function_binary_runs_an_invocation_against_the_server() {
    let server = start_pi_server();
    let invocation = crucial::Invocation {
        thread: "pi::estimate".into(),
        args: crucial::__private::codec::encode(&(100_000u64, 7u64)).unwrap(),
        servers: vec![server.1.clone()],
        attempt: 1,
        token: None,
        tls: None,
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pi-function"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .env_remove("CRUCIAL_SERVER")
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&crucial::__private::codec::encode(&invocation).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let outcome: Result<Vec<u8>, String> = crucial::__private::codec::decode(&out.stdout).unwrap();
    let inside: crucial::Result<u64> =
        crucial::__private::codec::decode(&outcome.unwrap()).unwrap();
    assert_eq!(inside.unwrap(), pi::count_inside(100_000, 7));
    let client = crucial::Config::new()
        .server(server.1.clone())
        .connect()
        .unwrap();
    let tally = client.open::<pi::Tally>(pi::TALLY);
    assert_eq!(tally.threads().unwrap(), 1);

    // An unknown thread name is a clear error, not a crash.
    let bad = crucial::Invocation {
        thread: "pi::nope".into(),
        ..invocation
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pi-function"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&crucial::__private::codec::encode(&bad).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let outcome: Result<Vec<u8>, String> = crucial::__private::codec::decode(&out.stdout).unwrap();
    assert!(outcome
        .unwrap_err()
        .contains("no cloud thread named `pi::nope`"));
}

#[test]
fn client_runs_with_the_process_executor() {
    let out = run(Command::new(env!("CARGO_BIN_EXE_pi"))
        .args(["4", "1000000"])
        .env_remove("CRUCIAL_SERVER")
        .env("CRUCIAL_EXECUTOR", "process")
        .env("CRUCIAL_FUNCTION_BINARY", env!("CARGO_BIN_EXE_pi-function")));
    assert!(
        (estimate(&out) - std::f64::consts::PI).abs() < 0.01,
        "{out}"
    );
    assert!(out.contains("executor: process"), "{out}");
    assert!(out.contains("from 4 threads"), "{out}");
}

/// The `lambda` executor (AWS SDK) against the local Lambda host serving the
/// real `pi-function` binary.
#[cfg(feature = "lambda")]
#[test]
fn client_runs_with_the_lambda_executor_against_the_local_host() {
    use crucial_lambda_host::{FunctionSpec, LambdaHost};
    let mut spec = FunctionSpec::new("pi", env!("CARGO_BIN_EXE_pi-function"));
    spec.timeout = std::time::Duration::from_secs(60);
    let host = LambdaHost::start("127.0.0.1:0", vec![spec]).unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_pi"))
        .args(["4", "1000000"])
        .env_remove("CRUCIAL_SERVER")
        .env("CRUCIAL_EXECUTOR", "lambda")
        .env("CRUCIAL_LAMBDA_FUNCTION", "pi")
        .env("CRUCIAL_LAMBDA_ENDPOINT", format!("http://{}", host.addr))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local"));
    assert!(
        (estimate(&out) - std::f64::consts::PI).abs() < 0.01,
        "{out}"
    );
    assert!(out.contains("executor: lambda"), "{out}");
    assert!(host.cold_starts("pi") >= 1);
}
