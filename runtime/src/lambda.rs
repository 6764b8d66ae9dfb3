//! `crucial::lambda::run()`: the whole `main` of a function binary deployed to
//! AWS Lambda (or run under the local Lambda host, or `cargo lambda watch`).
//!
//! The body of the binary's `main`:
//!
//! ```no_run
//! // my_app::link(); // first keep the crate's #[cloud_thread] registrations
//! crucial::lambda::run();
//! ```
//!
//! It is [`crate::function::main`]: the Lambda runtime when
//! `AWS_LAMBDA_RUNTIME_API` is set, the one-shot stdin worker of the `process`
//! executor otherwise, so one binary serves both.

pub use crate::function::main as run;
