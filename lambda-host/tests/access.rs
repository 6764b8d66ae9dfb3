//! Who may use the host's ports: its own user's processes, and anyone only
//! with `--insecure`.

use crucial_lambda_host::{FunctionSpec, LambdaHost};
use std::io::{Read, Write};
use std::process::Command;

/// A dry-run invocation (it checks the function exists, runs nothing).
const DRY_RUN: &str = "POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nHost: host\r\n\
    X-Amz-Invocation-Type: DryRun\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn host() -> LambdaHost {
    LambdaHost::start("127.0.0.1:0", vec![FunctionSpec::new("f", "/bin/true")]).expect("host")
}

#[test]
fn the_invoke_api_serves_its_own_user_and_drops_another() {
    let host = host();
    // This process is of the host's user.
    let mut own = std::net::TcpStream::connect(host.addr).unwrap();
    own.write_all(DRY_RUN.as_bytes()).unwrap();
    let mut answer = String::new();
    own.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    // Another user's process: the connection is closed unanswered. Making
    // one takes root (CI runs as root; elsewhere this half cannot run).
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if uid.ok() != Some(0) {
        eprintln!("not root: cannot act as another user, so only the own-user half ran");
        return;
    }
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{} && printf '{}' >&3 && cat <&3",
        host.addr.port(),
        DRY_RUN.replace('\r', "\\r").replace('\n', "\\n")
    );
    let other = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["bash", "-c", &script])
        .output()
        .expect("setpriv (util-linux)");
    let answer = String::from_utf8_lossy(&other.stdout);
    // It connected, and the host closed the connection unanswered (reset:
    // it had unread bytes).
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(
        stderr.is_empty() || stderr.contains("reset by peer"),
        "{stderr}"
    );
    assert!(answer.is_empty(), "nobody was answered: {answer}");
    // The host serves its own user all the same.
    let mut again = std::net::TcpStream::connect(host.addr).unwrap();
    again.write_all(DRY_RUN.as_bytes()).unwrap();
    let mut answer = String::new();
    again.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
}

#[test]
fn the_host_refuses_a_public_address_without_insecure() {
    let refused = Command::new(env!("CARGO_BIN_EXE_crucial-lambda-host"))
        .args(["--listen", "0.0.0.0:0", "--function", "f=/bin/true"])
        .output()
        .expect("run the host");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refusing to serve") && stderr.contains("--insecure"),
        "{stderr}"
    );
}
