//! Retries and time limits of cloud threads.

use std::time::Duration;

/// How a cloud thread is run: how many attempts, the backoff between them, and
/// a time limit per attempt. Global defaults come from [`crate::Config`] (and the
/// `CRUCIAL_ATTEMPTS`, `CRUCIAL_BACKOFF_MS`, `CRUCIAL_TIMEOUT_MS` variables); a
/// generated `spawn_with(&options, ...)` overrides them for one thread.
///
/// ```
/// use std::time::Duration;
/// let options = crucial::SpawnOptions::default()
///     .attempts(3)
///     .backoff(Duration::from_millis(50))
///     .timeout(Duration::from_secs(60));
/// assert_eq!(options.attempts, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnOptions {
    /// Attempts in all (1: no retry). A failed attempt is re-invoked with the same input.
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
    /// Time limit of one attempt (`None`: the executor's own limit).
    pub timeout: Option<Duration>,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            attempts: 1,
            backoff: Duration::from_millis(100),
            timeout: None,
        }
    }
}

impl SpawnOptions {
    /// Defaults overridden by `CRUCIAL_ATTEMPTS`, `CRUCIAL_BACKOFF_MS`, `CRUCIAL_TIMEOUT_MS`.
    pub fn from_env() -> SpawnOptions {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let mut options = SpawnOptions::default();
        if let Some(n) = var("CRUCIAL_ATTEMPTS") {
            options.attempts = n.max(1) as u32;
        }
        if let Some(ms) = var("CRUCIAL_BACKOFF_MS") {
            options.backoff = Duration::from_millis(ms);
        }
        if let Some(ms) = var("CRUCIAL_TIMEOUT_MS") {
            options.timeout = Some(Duration::from_millis(ms));
        }
        options
    }

    /// Sets the number of attempts (at least 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Sets the first backoff.
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the time limit of one attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The wait before attempt `attempt` (2, 3, ...).
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << (attempt.saturating_sub(2)).min(16))
    }
}
