//! The Invoke API and the pool of execution environments of each function.

use crate::environment::{self, error_document, Environment, Job, Outcome};
use crate::{FunctionSpec, MAX_PAYLOAD};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

struct Function {
    spec: FunctionSpec,
    environments: Mutex<Pool>,
    cold_starts: AtomicU64,
}

#[derive(Default)]
struct Pool {
    live: Vec<Arc<Environment>>,
    /// Environments being started (they count against the limit already).
    starting: usize,
}

/// Shared state of a host: its functions and their environments.
pub struct HostState {
    functions: HashMap<String, Function>,
    requests: AtomicU64,
}

impl HostState {
    /// State for these functions.
    pub fn new(functions: Vec<FunctionSpec>) -> Arc<HostState> {
        Arc::new(HostState {
            functions: functions
                .into_iter()
                .map(|spec| {
                    (
                        spec.name.clone(),
                        Function {
                            spec,
                            environments: Mutex::new(Pool::default()),
                            cold_starts: AtomicU64::new(0),
                        },
                    )
                })
                .collect(),
            requests: AtomicU64::new(0),
        })
    }

    /// Live environments of a function.
    pub fn environments(&self, name: &str) -> usize {
        self.functions.get(name).map_or(0, |f| {
            f.environments
                .lock()
                .unwrap()
                .live
                .iter()
                .filter(|e| !e.is_dead())
                .count()
        })
    }

    /// Processes started for a function.
    pub fn cold_starts(&self, name: &str) -> u64 {
        self.functions
            .get(name)
            .map_or(0, |f| f.cold_starts.load(Ordering::SeqCst))
    }

    /// Kills every environment.
    pub fn shutdown(&self) {
        for f in self.functions.values() {
            for env in f.environments.lock().unwrap().live.drain(..) {
                env.kill();
            }
        }
    }

    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (t >> 32) as u32,
            (t >> 16) as u16,
            n & 0xfff,
            (t >> 4) & 0xfff,
            (t ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) & 0xffff_ffff_ffff
        )
    }
}

/// An environment for one invocation: a warm idle one, or a new one while under
/// the concurrency limit. `None` means throttled.
async fn claim(function: &Function) -> Result<Option<Arc<Environment>>, std::io::Error> {
    let id = {
        let mut pool = function.environments.lock().unwrap();
        pool.live.retain(|e| !e.is_dead());
        if let Some(env) = pool.live.iter().find(|e| e.try_claim()) {
            return Ok(Some(Arc::clone(env)));
        }
        if pool.live.len() + pool.starting >= function.spec.concurrency {
            return Ok(None);
        }
        pool.starting += 1;
        function.cold_starts.fetch_add(1, Ordering::SeqCst)
    };
    let started = environment::spawn(&function.spec, id).await;
    let mut pool = function.environments.lock().unwrap();
    pool.starting -= 1;
    let env = started?;
    pool.live.push(Arc::clone(&env));
    Ok(Some(env))
}

fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_str(error_type).expect("ascii"),
    );
    let body = json!({ "Type": "User", "message": message }).to_string();
    (status, headers, body).into_response()
}

fn function_error(request_id: &str, document: Bytes) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amz-function-error",
        HeaderValue::from_static("Unhandled"),
    );
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    (StatusCode::OK, headers, document).into_response()
}

/// Runs one invocation to its end: response, error, timeout or exit.
async fn run_invocation(function: &Function, payload: Bytes, request_id: String) -> Response {
    let env = match claim(function).await {
        Ok(Some(env)) => env,
        Ok(None) => {
            return aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.",
            )
        }
        Err(e) => {
            return function_error(
                &request_id,
                error_document("Runtime.InvalidEntrypoint", &format!("cannot start: {e}")),
            )
        }
    };
    let timeout = function.spec.timeout;
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        + timeout.as_millis();
    let (reply, outcome) = oneshot::channel();
    let started = Instant::now();
    let job = Job {
        request_id: request_id.clone(),
        payload,
        deadline_ms,
        reply,
    };
    if !env.run(job).await {
        env.kill();
        return function_error(
            &request_id,
            error_document("Runtime.ExitError", "the execution environment is gone"),
        );
    }
    let response = match tokio::time::timeout(timeout, outcome).await {
        Ok(Ok(Outcome::Response(body))) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-amz-executed-version",
                HeaderValue::from_static("$LATEST"),
            );
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                headers.insert("x-amzn-requestid", v);
            }
            (StatusCode::OK, headers, body).into_response()
        }
        Ok(Ok(Outcome::Error(document))) | Ok(Ok(Outcome::InitError(document))) => {
            function_error(&request_id, document)
        }
        Ok(Ok(Outcome::Exited(status))) => {
            env.kill();
            return function_error(
                &request_id,
                error_document(
                    "Runtime.ExitError",
                    &format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
                ),
            );
        }
        Ok(Err(_)) => {
            env.kill();
            return function_error(
                &request_id,
                error_document(
                    "Runtime.ExitError",
                    &format!("RequestId: {request_id} Error: Runtime exited without answering"),
                ),
            );
        }
        Err(_) => {
            env.kill();
            return function_error(
                &request_id,
                error_document(
                    "Sandbox.Timedout",
                    &format!(
                        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                        timeout.as_secs_f64()
                    ),
                ),
            );
        }
    };
    tracing::debug!(%request_id, elapsed = ?started.elapsed(), "invocation done");
    env.release();
    response
}

async fn invoke(
    State(state): State<Arc<HostState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(function) = state.functions.get(&name) else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}"),
        );
    };
    if body.len() > MAX_PAYLOAD {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            &format!(
                "{} byte payload is too large for the RequestResponse invocation type ({MAX_PAYLOAD} byte maximum)",
                body.len()
            ),
        );
    }
    let request_id = state.request_id();
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    match kind {
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        "Event" => {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                if let Some(function) = state.functions.get(&name) {
                    let _ = run_invocation(function, body, request_id).await;
                }
            });
            StatusCode::ACCEPTED.into_response()
        }
        "RequestResponse" => run_invocation(function, body, request_id).await,
        other => aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("unknown invocation type {other}"),
        ),
    }
}

/// The Invoke API router.
pub fn router(state: Arc<HostState>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD * 2))
        .with_state(state)
}
