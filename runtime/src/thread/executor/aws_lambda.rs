//! The `lambda` executor: each cloud thread is an AWS Lambda `Invoke`
//! (`RequestResponse`) of the function binary, through the AWS SDK with its
//! retries disabled (attempts are ours, so none are hidden). The endpoint can be
//! overridden for emulators such as the local Lambda host.

use super::invoke_api::interpret;
use super::{Execution, Executor, Invocation};
use crate::function::event::LambdaPayload;
use crate::Error;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Region};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use std::sync::Arc;
use std::time::Duration;

/// Runs cloud threads on AWS Lambda.
pub struct LambdaExecutor {
    client: aws_sdk_lambda::Client,
    function: String,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for LambdaExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaExecutor")
            .field("function", &self.function)
            .finish()
    }
}

impl LambdaExecutor {
    /// An executor invoking `function` (name or ARN) in `region`, with
    /// credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN`, and an optional endpoint (for emulators).
    pub fn new(
        function: impl Into<String>,
        region: impl Into<String>,
        endpoint: Option<String>,
    ) -> Result<LambdaExecutor, Error> {
        let key = std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| {
            Error::Config(
                "the lambda executor needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            )
        })?;
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
            .map_err(|_| Error::Config("AWS_SECRET_ACCESS_KEY is not set".into()))?;
        let token = std::env::var("AWS_SESSION_TOKEN").ok();
        let credentials = aws_credential_types::Credentials::from_keys(key, secret, token);
        let mut config = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.into()))
            .credentials_provider(credentials)
            .retry_config(RetryConfig::disabled());
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the SDK's runtime: {e}")))?;
        Ok(LambdaExecutor {
            client: aws_sdk_lambda::Client::from_conf(config.build()),
            function: function.into(),
            runtime: Arc::new(runtime),
        })
    }

    /// From `CRUCIAL_LAMBDA_FUNCTION`, `AWS_REGION` (default `us-east-1`) and
    /// `CRUCIAL_LAMBDA_ENDPOINT` (optional).
    pub fn from_env() -> Result<LambdaExecutor, Error> {
        let function = std::env::var("CRUCIAL_LAMBDA_FUNCTION").map_err(|_| {
            Error::Config("CRUCIAL_LAMBDA_FUNCTION must name the function (or its ARN)".into())
        })?;
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".into());
        LambdaExecutor::new(
            function,
            region,
            std::env::var("CRUCIAL_LAMBDA_ENDPOINT").ok(),
        )
    }

    async fn invoke(
        client: aws_sdk_lambda::Client,
        function: String,
        invocation: Invocation,
    ) -> Result<Vec<u8>, String> {
        let payload = serde_json::to_vec(&LambdaPayload::from_invocation(&invocation))
            .map_err(|e| e.to_string())?;
        let output = client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "Invoke failed: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                )
            })?;
        let body = output
            .payload()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        interpret(output.status_code() as u16, output.function_error(), &body)
    }
}

struct LambdaExecution(std::sync::mpsc::Receiver<Result<Vec<u8>, String>>);

impl Execution for LambdaExecution {
    fn join(self: Box<Self>) -> Result<Vec<u8>, String> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err("the invocation was dropped".into()))
    }
}

impl Executor for LambdaExecutor {
    fn name(&self) -> &str {
        "lambda"
    }

    fn start(
        &self,
        invocation: Invocation,
        timeout: Option<Duration>,
    ) -> Result<Box<dyn Execution>, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let call = Self::invoke(self.client.clone(), self.function.clone(), invocation);
        self.runtime.spawn(async move {
            let result = match timeout {
                Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                    Err(format!("timed out after {limit:?} waiting for Lambda"))
                }),
                None => call.await,
            };
            let _ = tx.send(result);
        });
        Ok(Box::new(LambdaExecution(rx)))
    }
}
