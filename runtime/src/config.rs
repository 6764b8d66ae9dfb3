//! [`Config`]: how a program finds its nodes and runs its cloud threads, built
//! in code and overridden by `CRUCIAL_*` environment variables.

use crate::client::{Client, ClientOptions, Tls, Token};
use crate::thread::executor::{self, Executor};
use crate::thread::options::SpawnOptions;
use crate::wire::DEFAULT_MAX_FRAME;
use crate::{embedded, Error, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Environment variable naming the server(s): `host:port[,host:port...]`.
/// Unset means *embedded*: an in-process server on a loopback port.
pub const ENV_SERVER: &str = "CRUCIAL_SERVER";

/// Environment variable holding the application's token (for nodes that
/// authenticate; see the guide's *Security* chapter).
pub const ENV_TOKEN: &str = "CRUCIAL_TOKEN";

/// Environment variable naming a file that holds the application's token
/// (kept out of the process's environment, which other users may read).
pub const ENV_TOKEN_FILE: &str = "CRUCIAL_TOKEN_FILE";

/// Environment variable naming the CA file (PEM) of the nodes'
/// certificates: set, the client speaks TLS to the nodes.
pub const ENV_TLS_CA: &str = "CRUCIAL_TLS_CA";

/// Environment variable naming the name to expect in the nodes'
/// certificates (default: the host of the address dialled).
pub const ENV_TLS_SERVER_NAME: &str = "CRUCIAL_TLS_SERVER_NAME";

/// Default busy-wait of a lone blocking call, in microseconds.
const DEFAULT_SPIN_MICROS: u64 = 200;

/// How a client finds its servers and runs cloud threads.
///
/// [`Config::connect`] gives a data-plane [`Client`]; [`crate::Context::new`]
/// builds the whole process context (client, executor, spawn options).
///
/// ```
/// let config = crucial::Config::new()
///     .server("127.0.0.1:7000")
///     .retries(2);
/// assert_eq!(config.servers(), ["127.0.0.1:7000"]);
/// ```
#[derive(Clone)]
pub struct Config {
    servers: Vec<String>,
    max_frame: usize,
    connect_timeout: Duration,
    retries: u32,
    spin: Duration,
    executor: Option<Arc<dyn Executor>>,
    executor_kind: Option<String>,
    function_binary: Option<PathBuf>,
    spawn: SpawnOptions,
    token: Option<Token>,
    tls: Option<Tls>,
    /// Why the token, or the CA file, the environment names could not be
    /// read (reported by `connect`, which can fail; `from_env` cannot; a
    /// token or TLS set in code replaces its own).
    token_problem: Option<String>,
    tls_problem: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("servers", &self.servers)
            .field("max_frame", &self.max_frame)
            .field("connect_timeout", &self.connect_timeout)
            .field("retries", &self.retries)
            .field("spin", &self.spin)
            .field("executor", &self.executor.as_ref().map(|e| e.name()))
            .field("executor_kind", &self.executor_kind)
            .field("spawn", &self.spawn)
            .field("token", &self.token)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// Embedded defaults: no server (start one in process), local-thread executor.
    pub fn new() -> Config {
        Config {
            servers: Vec::new(),
            max_frame: DEFAULT_MAX_FRAME,
            connect_timeout: Duration::from_secs(5),
            retries: 1,
            spin: Duration::from_micros(DEFAULT_SPIN_MICROS),
            executor: None,
            executor_kind: None,
            function_binary: None,
            spawn: SpawnOptions::default(),
            token: None,
            tls: None,
            token_problem: None,
            tls_problem: None,
        }
    }

    /// Defaults overridden by the environment: `CRUCIAL_SERVER`,
    /// `CRUCIAL_EXECUTOR` (`local`, `process`, `lambda`), `CRUCIAL_FUNCTION_BINARY`,
    /// `CRUCIAL_ATTEMPTS`, `CRUCIAL_BACKOFF_MS`, `CRUCIAL_TIMEOUT_MS`,
    /// `CRUCIAL_SPIN_MICROS`, `CRUCIAL_TOKEN` or `CRUCIAL_TOKEN_FILE`.
    pub fn from_env() -> Config {
        let mut config = Config::new();
        match Token::from_env(ENV_TOKEN, ENV_TOKEN_FILE) {
            Ok(token) => config.token = token,
            Err(problem) => config.token_problem = Some(problem),
        }
        if let Some(ca) = std::env::var_os(ENV_TLS_CA).filter(|p| !p.is_empty()) {
            match Tls::with_ca_file(&ca) {
                Ok(tls) => {
                    config.tls = Some(match std::env::var(ENV_TLS_SERVER_NAME) {
                        Ok(name) if !name.is_empty() => tls.server_name(name),
                        _ => tls,
                    })
                }
                Err(e) => config.tls_problem = Some(format!("{ENV_TLS_CA}: {e}")),
            }
        }
        config.executor_kind = std::env::var("CRUCIAL_EXECUTOR")
            .ok()
            .filter(|v| !v.is_empty());
        config.function_binary = std::env::var_os("CRUCIAL_FUNCTION_BINARY").map(Into::into);
        config.spawn = SpawnOptions::from_env();
        if let Some(micros) = std::env::var("CRUCIAL_SPIN_MICROS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.spin = Duration::from_micros(micros);
        }
        if let Ok(list) = std::env::var(ENV_SERVER) {
            for addr in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                config = config.server(addr);
            }
        }
        config
    }

    /// Adds a server address (`host:port`).
    pub fn server(mut self, addr: impl Into<String>) -> Config {
        self.servers.push(addr.into());
        self
    }

    /// The configured servers (empty means embedded).
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The application's token, presented to nodes that authenticate
    /// (ignored by those that do not). Also set by `CRUCIAL_TOKEN` or
    /// `CRUCIAL_TOKEN_FILE`.
    pub fn token(mut self, token: Token) -> Config {
        self.token = Some(token);
        self.token_problem = None;
        self
    }

    /// Speaks TLS to the nodes, verifying their certificates with `tls`
    /// (nodes started with `--tls-cert`). Also set by `CRUCIAL_TLS_CA`.
    pub fn tls(mut self, tls: Tls) -> Config {
        self.tls = Some(tls);
        self.tls_problem = None;
        self
    }

    /// Largest reply frame accepted, in bytes.
    pub fn max_frame(mut self, bytes: usize) -> Config {
        self.max_frame = bytes;
        self
    }

    /// Timeout for establishing a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Config {
        self.connect_timeout = timeout;
        self
    }

    /// How many times a call is re-sent (same request id, so applied once) after
    /// its connection broke.
    pub fn retries(mut self, retries: u32) -> Config {
        self.retries = retries;
        self
    }

    /// How long a blocking call that is alone on its connection busy-waits for its
    /// reply before sleeping (default 200 µs; zero never spins). Also set by
    /// `CRUCIAL_SPIN_MICROS`.
    pub fn spin(mut self, spin: Duration) -> Config {
        self.spin = spin;
        self
    }

    /// The executor that runs cloud threads (default: local threads).
    pub fn executor(mut self, executor: impl Executor) -> Config {
        self.executor = Some(Arc::new(executor));
        self
    }

    /// Chooses an executor by name, built with the context: `local`, `process`
    /// (the function binary as processes under a local Lambda host) or `lambda`
    /// (AWS Lambda; needs the `lambda` feature).
    pub fn executor_kind(mut self, kind: impl Into<String>) -> Config {
        self.executor_kind = Some(kind.into());
        self
    }

    /// The function binary of the `process` executor (default: the running
    /// program's name plus `-function`, in its directory).
    pub fn function_binary(mut self, path: impl Into<PathBuf>) -> Config {
        self.function_binary = Some(path.into());
        self
    }

    /// Default retries and time limit of cloud threads.
    pub fn spawn_options(mut self, options: SpawnOptions) -> Config {
        self.spawn = options;
        self
    }

    /// The default retries and time limit of cloud threads.
    pub(crate) fn spawn(&self) -> &SpawnOptions {
        &self.spawn
    }

    /// The executor this configuration asks for.
    pub(crate) fn build_executor(&self) -> Result<Arc<dyn Executor>> {
        if let Some(executor) = &self.executor {
            return Ok(Arc::clone(executor));
        }
        executor::by_kind(self.executor_kind.as_deref(), self.function_binary.clone())
    }

    /// A data-plane client of the configured nodes; with none configured, starts
    /// the embedded node first. Executor settings are not used here (see
    /// [`crate::Context::new`]).
    pub fn connect(self) -> Result<Client> {
        if let Some(problem) = self.token_problem.or(self.tls_problem) {
            return Err(Error::Config(problem));
        }
        let mut servers = self.servers;
        if servers.is_empty() {
            servers.push(embedded::start().map_err(|reason| {
                Error::Config(format!("{ENV_SERVER} is not set and {reason}"))
            })?);
        }
        Client::connect(ClientOptions {
            servers,
            max_frame: self.max_frame,
            connect_timeout: self.connect_timeout,
            retries: self.retries,
            spin: self.spin,
            token: self.token,
            tls: self.tls,
        })
    }
}
