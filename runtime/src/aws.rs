//! The `lambda` executor: cloud threads as AWS Lambda invocations through the
//! AWS SDK (`Invoke`, `RequestResponse`). Behind the `lambda` feature so the default
//! build does not compile the SDK.

use crate::thread::Executor;
use crate::Result;
use std::sync::Arc;

/// Builds the `lambda` executor from `CRUCIAL_LAMBDA_FUNCTION`, `AWS_REGION` and,
/// for emulators, `CRUCIAL_LAMBDA_ENDPOINT`.
#[cfg(not(feature = "lambda"))]
pub fn executor_from_env() -> Result<Arc<dyn Executor>> {
    Err(crate::Error::Config(
        "the `lambda` executor needs the `lambda` feature of the crucial crate \
         (crucial = { features = [\"lambda\"] })"
            .into(),
    ))
}

#[cfg(feature = "lambda")]
pub use imp::*;

#[cfg(feature = "lambda")]
mod imp {
    use super::*;

    /// Builds the `lambda` executor from `CRUCIAL_LAMBDA_FUNCTION`, `AWS_REGION`
    /// and, for emulators, `CRUCIAL_LAMBDA_ENDPOINT`.
    pub fn executor_from_env() -> Result<Arc<dyn Executor>> {
        Ok(Arc::new(crate::thread::LambdaExecutor::from_env()?))
    }
}
