//! Lambda's Invoke API as the executors speak it: [`invoke_http`] posts an
//! invocation to the local Lambda host over a minimal blocking HTTP/1.1 client
//! (loopback, one request per connection), and [`interpret`] reads Lambda's
//! answer, for this path and for the AWS SDK's (which signs and uses TLS).

use super::Invocation;
use crate::function::event::{LambdaOutput, LambdaPayload};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A response: status, headers (lower-case names), body.
#[derive(Debug)]
struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `POST`s `body` to `http://{addr}{path}` and reads the whole response.
fn post(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Option<Duration>,
) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(timeout)?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if response.header("transfer-encoding") == Some("chunked") {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                break;
            }
            let start = response.body.len();
            response.body.resize(start + size, 0);
            reader.read_exact(&mut response.body[start..])?;
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(len) = response
        .header("content-length")
        .and_then(|v| v.parse().ok())
    {
        response.body.resize(len, 0);
        reader.read_exact(&mut response.body)?;
    } else {
        reader.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

/// Invokes a function through the Invoke API and interprets Lambda's answer.
/// Throttling (429) waits and tries again; it is not a failed attempt.
pub(crate) fn invoke_http(
    addr: &str,
    function: &str,
    invocation: &Invocation,
    timeout: Option<Duration>,
) -> Result<Vec<u8>, String> {
    let payload = serde_json::to_vec(&LambdaPayload::from_invocation(invocation))
        .map_err(|e| e.to_string())?;
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
        if left == Some(Duration::ZERO) {
            return Err(format!(
                "timed out after {:?} waiting for the function",
                timeout.unwrap_or_default()
            ));
        }
        let response = post(
            addr,
            &path,
            &[
                ("X-Amz-Invocation-Type", "RequestResponse"),
                ("Content-Type", "application/json"),
            ],
            &payload,
            left,
        )
        .map_err(|e| format!("invoke failed: {e}"))?;
        if response.status == 429 {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
            continue;
        }
        return interpret(
            response.status,
            response.header("x-amz-function-error"),
            &response.body,
        );
    }
}

/// Lambda's answer to an invocation: the output, or the error it describes.
pub(crate) fn interpret(
    status: u16,
    function_error: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let text = || String::from_utf8_lossy(body).into_owned();
    if status != 200 {
        return Err(format!(
            "the Lambda service answered HTTP {status}: {}",
            text()
        ));
    }
    if let Some(kind) = function_error {
        let document: serde_json::Value =
            serde_json::from_slice(body).unwrap_or_else(|_| serde_json::Value::String(text()));
        let error_type = document["errorType"].as_str().unwrap_or(kind);
        let message = document["errorMessage"]
            .as_str()
            .map_or_else(text, str::to_string);
        return Err(format!("{error_type}: {message}"));
    }
    let output: LambdaOutput = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the function answered something else than a cloud-thread result ({e}): {}",
            text()
        )
    })?;
    output.decode()
}
