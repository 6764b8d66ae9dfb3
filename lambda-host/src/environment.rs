//! Execution environments: one function process each, with its own Runtime API.

use crate::FunctionSpec;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// What became of one invocation inside an environment.
#[derive(Debug)]
pub enum Outcome {
    /// `/response` was posted.
    Response(Bytes),
    /// `/error` was posted (a Lambda error document).
    Error(Bytes),
    /// The process exited before answering.
    Exited(String),
    /// `/init/error` was posted.
    InitError(Bytes),
}

/// One invocation handed to an environment.
pub struct Job {
    /// The request id.
    pub request_id: String,
    /// The event.
    pub payload: Bytes,
    /// Absolute deadline, ms since the epoch.
    pub deadline_ms: u128,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Outcome>,
}

/// One execution environment.
pub struct Environment {
    jobs: mpsc::Sender<Job>,
    next: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    current: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    busy: AtomicBool,
    dead: AtomicBool,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    arn: String,
}

impl Environment {
    /// Whether it can take an invocation now (and takes it if so).
    pub fn try_claim(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
            && self
                .busy
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Marks it free again after an invocation.
    pub fn release(&self) {
        self.busy.store(false, Ordering::SeqCst);
    }

    /// Whether its process has gone.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Hands an invocation to the process (picked up by its next `/next`).
    pub async fn run(&self, job: Job) -> bool {
        self.jobs.send(job).await.is_ok()
    }

    /// Kills the process (a timeout destroys the environment, as Lambda does).
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        if let Some(kill) = self.kill.lock().unwrap().take() {
            let _ = kill.send(());
        }
    }

    fn finish(&self, request_id: &str, outcome: Outcome) -> bool {
        let mut current = self.current.lock().unwrap();
        match current.take() {
            Some((id, reply)) if id == request_id => {
                let _ = reply.send(outcome);
                true
            }
            other => {
                *current = other;
                false
            }
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn next(State(env): State<Arc<Environment>>) -> Response {
    let job = env.next.lock().await.recv().await;
    let Some(job) = job else {
        return StatusCode::GONE.into_response();
    };
    *env.current.lock().unwrap() = Some((job.request_id.clone(), job.reply));
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", job.request_id.clone());
    set("lambda-runtime-deadline-ms", job.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", env.arn.clone());
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{}",
            now_ms() / 1000,
            job.request_id.replace('-', "")
        ),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, job.payload).into_response()
}

async fn response(
    State(env): State<Arc<Environment>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    if env.finish(&id, Outcome::Response(body)) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn error(
    State(env): State<Arc<Environment>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    if env.finish(&id, Outcome::Error(body)) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn init_error(State(env): State<Arc<Environment>>, body: Bytes) -> StatusCode {
    env.dead.store(true, Ordering::SeqCst);
    // The first invocation is waiting in the channel: answer it with the init error.
    if let Ok(job) = env.next.lock().await.try_recv() {
        let _ = job.reply.send(Outcome::InitError(body));
    }
    StatusCode::ACCEPTED
}

/// Starts an environment: its Runtime API listener and its process.
pub async fn spawn(spec: &FunctionSpec, id: u64) -> std::io::Result<Arc<Environment>> {
    let (jobs, rx) = mpsc::channel(1);
    let env = Arc::new(Environment {
        jobs,
        next: tokio::sync::Mutex::new(rx),
        current: Mutex::new(None),
        busy: AtomicBool::new(true),
        dead: AtomicBool::new(false),
        kill: Mutex::new(None),
        arn: spec.arn(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(Arc::clone(&env));
    let listener = crate::peer::Guarded::new(listener, crate::peer::Access::OwnUser);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut command = tokio::process::Command::new(&spec.binary);
    command
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{id}"))
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        )
        .env("AWS_REGION", "us-east-1")
        .env("_HANDLER", "bootstrap")
        .envs(spec.env.iter().cloned())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        // The function processes die with the host (even when it exits without
        // running destructors), as execution environments die with Lambda.
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            server.abort();
            return Err(e);
        }
    };
    let pid = child.id();
    let (kill, killed) = oneshot::channel::<()>();
    *env.kill.lock().unwrap() = Some(kill);
    let watched = Arc::clone(&env);
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            _ = killed => {
                let _ = child.kill().await;
                "killed by the host".to_string()
            }
        };
        watched.dead.store(true, Ordering::SeqCst);
        tracing::debug!(?pid, environment = id, %status, "function process exited");
        let current = watched.current.lock().unwrap().take();
        if let Some((_, reply)) = current {
            let _ = reply.send(Outcome::Exited(status.clone()));
        }
        // An invocation handed over but never picked up fails the same way.
        if let Ok(job) = watched.next.lock().await.try_recv() {
            let _ = job.reply.send(Outcome::Exited(status));
        }
        server.abort();
    });
    Ok(env)
}

/// A Lambda error document.
pub fn error_document(error_type: &str, message: &str) -> Bytes {
    Bytes::from(json!({ "errorType": error_type, "errorMessage": message }).to_string())
}
