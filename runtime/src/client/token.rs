//! A client's credential: the token a node that authenticates asks for in
//! the `Hello` (see the guide's *Security* chapter). It is shown by no
//! `Debug` and no error message, so a logged configuration leaks nothing.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An application's token, presented in each connection's handshake.
///
/// ```
/// let token = crucial::Token::new("7d1f0c2a9e4b6d8f");
/// assert_eq!(format!("{token:?}"), "Token(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(Arc<str>);

impl Token {
    /// A token from its text (surrounding white space removed, as when it is
    /// read from a file with a final newline).
    pub fn new(token: impl AsRef<str>) -> Token {
        Token(token.as_ref().trim().into())
    }

    /// Reads a token from a file (its whole content, trimmed).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> std::io::Result<Token> {
        let text = std::fs::read_to_string(path.as_ref())?;
        let token = Token::new(text);
        if token.0.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} holds no token", path.as_ref().display()),
            ));
        }
        Ok(token)
    }

    /// The token a program's environment names: the content of the file
    /// `file_var` names, else the value of `var`; `Ok(None)` if neither is
    /// set.
    pub fn from_env(var: &str, file_var: &str) -> Result<Option<Token>, String> {
        if let Some(path) = std::env::var_os(file_var).filter(|p| !p.is_empty()) {
            return Token::from_file(&path).map(Some).map_err(|e| {
                format!(
                    "{file_var}={}: cannot read the token: {e}",
                    std::path::Path::new(&path).display()
                )
            });
        }
        Ok(std::env::var(var)
            .ok()
            .map(Token::new)
            .filter(|t| !t.expose().is_empty()))
    }

    /// The token's text, to put in a handshake.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}
