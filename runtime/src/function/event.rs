//! The Lambda event of a cloud-thread invocation and its result, as JSON.

use crate::thread::executor::Invocation;

/// The JSON event of a cloud-thread invocation on Lambda.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LambdaPayload {
    /// Registered name of the cloud thread.
    pub thread: String,
    /// Encoded arguments, base64.
    pub args: String,
    /// Shared-object servers (`host:port`).
    pub servers: Vec<String>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The application's token, for nodes that authenticate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<crate::Token>,
    /// The CA (PEM) and server name its client reaches TLS nodes with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::Tls>,
}

/// The JSON result of a successful invocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LambdaOutput {
    /// Encoded result, base64.
    pub output: String,
}

fn base64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl LambdaPayload {
    /// The Lambda event for an invocation.
    pub fn from_invocation(invocation: &Invocation) -> LambdaPayload {
        use base64::Engine;
        LambdaPayload {
            thread: invocation.thread.clone(),
            args: base64().encode(&invocation.args),
            servers: invocation.servers.clone(),
            attempt: invocation.attempt,
            token: invocation.token.clone(),
            tls: invocation.tls.clone(),
        }
    }

    /// Back to an invocation.
    pub fn into_invocation(self) -> Result<Invocation, String> {
        use base64::Engine;
        Ok(Invocation {
            args: base64()
                .decode(&self.args)
                .map_err(|e| format!("arguments are not base64: {e}"))?,
            thread: self.thread,
            servers: self.servers,
            attempt: self.attempt,
            token: self.token,
            tls: self.tls,
        })
    }
}

impl LambdaOutput {
    /// Wraps an encoded result.
    pub fn new(output: &[u8]) -> LambdaOutput {
        use base64::Engine;
        LambdaOutput {
            output: base64().encode(output),
        }
    }

    /// The encoded result.
    pub fn decode(&self) -> Result<Vec<u8>, String> {
        use base64::Engine;
        base64()
            .decode(&self.output)
            .map_err(|e| format!("result is not base64: {e}"))
    }
}
