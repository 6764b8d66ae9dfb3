//! The credentials file: who may use a node, one credential per line.
//!
//! ```text
//! # ROLE     NAME    TOKEN
//! app        shop    4f6d9c0e2b7a8d1f3e5c7b9a
//! app        shop    9a2b4c6d8e0f1a3b5c7d9e1f   (a second token while rotating)
//! admin      ops     a8c1e3f5b7d9a0c2e4f6b8d0
//! cluster    nodes   77e2c4a6e8b0d2f4a6c8e0b2
//! ```
//!
//! `app NAME` is a client of application NAME, `admin` is `crucial-admin`
//! and the metrics scraper (and may use the client port with every
//! application's rights), `cluster` is the nodes to each other: the first
//! `cluster` line is the token a node presents, and every one listed is
//! accepted (so a rotation first adds the new token on every node, then
//! moves it first, then drops the old one).
//!
//! Only digests of the tokens are kept (SHA-256), compared in constant time;
//! no error names a token. The one raw token kept is the cluster's first,
//! which the node must present.

use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Shortest token taken: 16 characters (a random 128-bit token in hex is 32).
pub const MIN_TOKEN_LEN: usize = 16;

/// What a credential lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A client of this application.
    Application(Arc<str>),
    /// An administrator (admin plane, metrics; every application's objects).
    Admin(Arc<str>),
    /// Another node of the cluster.
    Cluster,
}

impl Identity {
    /// The role's name as the file spells it.
    pub fn role(&self) -> &'static str {
        match self {
            Identity::Application(_) => "app",
            Identity::Admin(_) => "admin",
            Identity::Cluster => "cluster",
        }
    }
}

/// One credential: who, and the digest of its token.
struct Credential {
    identity: Identity,
    digest: [u8; 32],
}

/// The credentials a node takes, parsed from its file.
pub struct Credentials {
    all: Vec<Credential>,
    /// The token this node presents to the others (the first `cluster` line).
    cluster_token: Option<crucial::Token>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "identities",
                &self.all.iter().map(|c| &c.identity).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl Credentials {
    /// Parses a credentials file's text; errors name the line, never a token.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let mut all: Vec<Credential> = Vec::new();
        let mut cluster_token = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |what: String| format!("line {}: {what}", n + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [role, name, token] = fields[..] else {
                return Err(at(format!(
                    "expected `ROLE NAME TOKEN` (3 fields), found {}",
                    fields.len()
                )));
            };
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(at(format!(
                    "the name `{name}` may hold letters, digits, `-`, `_` and `.` only"
                )));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(at(format!(
                    "the token of `{role} {name}` is shorter than {MIN_TOKEN_LEN} characters; \
                     make one with `openssl rand -hex 16`"
                )));
            }
            let identity = match role {
                "app" => Identity::Application(name.into()),
                "admin" => Identity::Admin(name.into()),
                "cluster" => {
                    cluster_token.get_or_insert_with(|| crucial::Token::new(token));
                    Identity::Cluster
                }
                other => {
                    return Err(at(format!(
                        "unknown role `{other}`: expected `app`, `admin` or `cluster`"
                    )))
                }
            };
            let digest = digest(token);
            if let Some(twice) = all.iter().find(|c| c.digest == digest) {
                if twice.identity != identity {
                    return Err(at(format!(
                        "`{role} {name}` has the token of a `{}` credential given earlier: \
                         each identity needs its own token",
                        twice.identity.role()
                    )));
                }
            }
            all.push(Credential { identity, digest });
        }
        Ok(Credentials { all, cluster_token })
    }

    /// Whose token this is, if any. Every credential is compared, each in
    /// constant time, so the time taken tells nothing of which one matched.
    pub fn identify(&self, token: &str) -> Option<&Identity> {
        let digest = digest(token);
        let mut found = None;
        for credential in &self.all {
            if same(&credential.digest, &digest) && found.is_none() {
                found = Some(&credential.identity);
            }
        }
        found
    }

    /// The token this node presents on other nodes' peer ports.
    pub fn cluster_token(&self) -> Option<&crucial::Token> {
        self.cluster_token.as_ref()
    }

    /// How many credentials of each role: (applications, admins, cluster).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |f: fn(&Identity) -> bool| self.all.iter().filter(|c| f(&c.identity)).count();
        (
            count(|i| matches!(i, Identity::Application(_))),
            count(|i| matches!(i, Identity::Admin(_))),
            count(|i| matches!(i, Identity::Cluster)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# who may use the node
app     shop   shop-token-0000000001
app     shop   shop-token-0000000002
app     blog   blog-token-0000000001
admin   ops    admin-token-000000001

cluster nodes  cluster-token-0000001
cluster nodes  cluster-token-0000002
";

    #[test]
    fn each_token_names_its_identity_and_both_tokens_of_a_rotation_work() {
        let credentials = Credentials::parse(FILE).expect("a valid file");
        let app = |name: &str| Some(Identity::Application(name.into()));
        assert_eq!(
            credentials.identify("shop-token-0000000001").cloned(),
            app("shop")
        );
        assert_eq!(
            credentials.identify("shop-token-0000000002").cloned(),
            app("shop")
        );
        assert_eq!(
            credentials.identify("blog-token-0000000001").cloned(),
            app("blog")
        );
        assert_eq!(
            credentials.identify("admin-token-000000001").cloned(),
            Some(Identity::Admin("ops".into()))
        );
        assert_eq!(
            credentials.identify("cluster-token-0000002"),
            Some(&Identity::Cluster)
        );
        assert_eq!(credentials.identify("shop-token-0000000003"), None);
        assert_eq!(credentials.identify(""), None);
        assert_eq!(
            credentials.cluster_token().map(|t| t.expose()),
            Some("cluster-token-0000001"),
            "the first cluster token is the one presented"
        );
        assert_eq!(credentials.counts(), (3, 1, 2));
    }

    #[test]
    fn mistakes_name_their_line_and_never_a_token() {
        let cases = [
            ("app shop", "line 1: expected `ROLE NAME TOKEN`"),
            ("app shop short", "shorter than 16"),
            ("user shop shop-token-0000000001", "unknown role `user`"),
            ("app sh/op shop-token-0000000001", "the name `sh/op`"),
            (
                "app shop shop-token-0000000001\nadmin ops shop-token-0000000001",
                "line 2: `admin ops` has the token of a `app` credential",
            ),
        ];
        for (text, expected) in cases {
            let error = Credentials::parse(text).expect_err(text);
            assert!(error.contains(expected), "{error:?} for {text:?}");
            assert!(!error.contains("shop-token"), "{error:?} shows a token");
        }
        let debug = format!("{:?}", Credentials::parse(FILE).unwrap());
        assert!(!debug.contains("token-0"), "{debug}");
    }

    #[test]
    fn digests_are_compared_whole() {
        let a = digest("shop-token-0000000001");
        let mut b = a;
        assert!(same(&a, &b));
        b[31] ^= 1;
        assert!(!same(&a, &b));
    }
}
