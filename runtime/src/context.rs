//! The process-wide context: the data-plane client, the executor that runs
//! cloud threads, and their default spawn options.
//!
//! `Type::shared(key)` proxies and `spawn` of cloud threads use the global
//! context, built from [`Config::from_env`] on first use unless one was
//! [installed](Context::install) before.
//!
//! A function process (a Lambda execution environment) runs invocations of
//! any application that invokes it, one at a time, and stays warm between
//! them: each invocation names its nodes, its application's token and TLS,
//! and its cloud thread must run with those, not with whatever the first
//! invocation installed. So there the global context is the invocation's
//! ([`Context::enter_invocation`]), made once per distinct application and
//! kept for the next warm invocation of it.

use crate::client::{Client, Tls};
use crate::config::Config;
use crate::thread::executor::Executor;
use crate::thread::options::SpawnOptions;
use crate::Token;
use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Everything a program needs to reach shared objects and start cloud threads.
///
/// ```
/// # crucial_server::link();
/// let context = crucial::Context::global()?;
/// assert_eq!(context.executor().name(), "local"); // nothing configured
/// assert_eq!(context.client().servers().len(), 1); // the embedded node
/// # Ok::<(), crucial::Error>(())
/// ```
#[derive(Clone)]
pub struct Context {
    client: Client,
    executor: Arc<dyn Executor>,
    spawn: SpawnOptions,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("client", &self.client)
            .field("executor", &self.executor.name())
            .field("spawn", &self.spawn)
            .finish()
    }
}

static GLOBAL: OnceLock<Context> = OnceLock::new();
static GLOBAL_INIT: Mutex<()> = Mutex::new(());

/// In a function process: the context of the invocation running now.
static INVOKED: RwLock<Option<&'static Context>> = RwLock::new(None);
/// Whether this process runs invocations (set once; until then `global`
/// takes no lock).
static INVOKED_ON: AtomicBool = AtomicBool::new(false);
/// What tells apart the applications that invoke a function process: the
/// nodes, the token and the TLS their invocations carry.
type Application = (Vec<String>, Option<Token>, Option<Tls>);
/// The contexts made for invocations, by application (see
/// [`Context::enter_invocation`]).
type Invoked = Vec<(Application, &'static Context)>;
static INVOKED_ALL: Mutex<Invoked> = Mutex::new(Vec::new());

impl Context {
    /// Builds the executor and the client of `config` (starting the embedded
    /// node if no server is configured).
    pub fn new(config: Config) -> Result<Context> {
        let executor = config.build_executor()?;
        let spawn = config.spawn().clone();
        Ok(Context {
            client: config.connect()?,
            executor,
            spawn,
        })
    }

    /// The process-wide context, built from [`Config::from_env`] on first use
    /// unless one was [installed](Context::install).
    pub fn global() -> Result<&'static Context> {
        if INVOKED_ON.load(Ordering::Acquire) {
            if let Some(context) = *INVOKED.read().unwrap_or_else(|e| e.into_inner()) {
                return Ok(context);
            }
        }
        if let Some(context) = GLOBAL.get() {
            return Ok(context);
        }
        let _guard = GLOBAL_INIT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(context) = GLOBAL.get() {
            return Ok(context);
        }
        let context = Context::new(Config::from_env())?;
        Ok(GLOBAL.get_or_init(|| context))
    }

    /// Makes this the process-wide context. Fails if one is already in use.
    pub fn install(self) -> Result<()> {
        let _guard = GLOBAL_INIT.lock().unwrap_or_else(|e| e.into_inner());
        GLOBAL
            .set(self)
            .map_err(|_| Error::Config("a global context is already installed".into()))
    }

    /// Makes the context for `application` (the nodes, token and TLS an
    /// invocation carries) the one `global` gives, building it with `config`
    /// the first time this process sees that application. For function processes,
    /// which run one invocation at a time: the contexts are kept (one per
    /// application that invoked the process) for its next warm invocation.
    #[doc(hidden)]
    pub fn enter_invocation(
        application: (Vec<String>, Option<Token>, Option<Tls>),
        config: impl FnOnce() -> Config,
    ) -> Result<()> {
        let mut all = INVOKED_ALL.lock().unwrap_or_else(|e| e.into_inner());
        let context = match all.iter().find(|(made_for, _)| *made_for == application) {
            Some((_, context)) => *context,
            None => {
                let context: &'static Context = Box::leak(Box::new(Context::new(config())?));
                all.push((application, context));
                context
            }
        };
        *INVOKED.write().unwrap_or_else(|e| e.into_inner()) = Some(context);
        INVOKED_ON.store(true, Ordering::Release);
        Ok(())
    }

    /// The data-plane client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The executor cloud threads run on.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    /// Default retries and time limit of cloud threads.
    pub fn spawn_options(&self) -> &SpawnOptions {
        &self.spawn
    }
}
