//! Choosing an executor by name (`CRUCIAL_EXECUTOR`, [`crate::Config::executor_kind`]).

use super::local::LocalExecutor;
use super::process::ProcessExecutor;
use super::Executor;
use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// The executor named `kind` (`None` is `local`); `function_binary` is the
/// `process` executor's binary (default: the program's `-function` sibling).
pub(crate) fn by_kind(
    kind: Option<&str>,
    function_binary: Option<PathBuf>,
) -> Result<Arc<dyn Executor>> {
    match kind {
        None | Some("local") => Ok(Arc::new(LocalExecutor)),
        Some("process") => {
            let binary = function_binary
                .or_else(ProcessExecutor::sibling_binary)
                .ok_or_else(|| {
                    Error::Config("no function binary: set CRUCIAL_FUNCTION_BINARY".into())
                })?;
            Ok(Arc::new(ProcessExecutor::new(binary)?))
        }
        Some("lambda") => lambda(),
        Some(other) => Err(Error::Config(format!(
            "unknown executor `{other}`; expected local, process or lambda"
        ))),
    }
}

/// The `lambda` executor from `CRUCIAL_LAMBDA_FUNCTION`, `AWS_REGION` and, for
/// emulators, `CRUCIAL_LAMBDA_ENDPOINT`.
#[cfg(feature = "lambda")]
fn lambda() -> Result<Arc<dyn Executor>> {
    Ok(Arc::new(super::aws_lambda::LambdaExecutor::from_env()?))
}

#[cfg(not(feature = "lambda"))]
fn lambda() -> Result<Arc<dyn Executor>> {
    Err(Error::Config(
        "the `lambda` executor needs the `lambda` feature of the crucial crate \
         (crucial = { features = [\"lambda\"] })"
            .into(),
    ))
}
