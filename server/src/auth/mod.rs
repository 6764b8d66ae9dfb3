//! Who may use this node. With a credentials file (`--credentials FILE`,
//! see [`credentials`]), every connection's `Hello` must carry a token: an
//! application's or an admin's on the client port, the cluster's on the
//! peer port; the admin plane and the metrics page take an admin's token as
//! a bearer. Without one, the node takes every connection, which it allows
//! only on loopback addresses unless told `--insecure` ([`check_exposure`]).
//!
//! The file is read again within a second of a change (a rotation needs no
//! restart; connections already open keep the identity they proved). A
//! client's id is scoped to its application ([`scoped_client_id`]), so a
//! client of another application that sends the same id reaches none of
//! its remembered replies.

pub mod credentials;

pub use credentials::{Credentials, Identity};

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The port a connection came through (the node's `Plane`, without
/// depending on the request layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The port clients use.
    Client,
    /// The port the other members use.
    Peer,
}

impl Port {
    /// Its name in errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Port::Client => "client",
            Port::Peer => "peer",
        }
    }
}

/// How often the credentials file is looked at for a change.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The node's credentials, from their file, kept fresh.
pub struct Auth {
    path: PathBuf,
    current: RwLock<Arc<Credentials>>,
    /// A digest of the file's text when last read (a rotation that keeps
    /// the length within one tick of the file system's clock is a change).
    seen: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("path", &self.path).finish()
    }
}

/// Reads and parses the file; refuses one that users other than its owner
/// may read (the tokens are secrets).
fn read(path: &Path) -> Result<(Credentials, [u8; 32]), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("credentials file {shown}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o004 != 0 {
            return Err(format!(
                "credentials file {shown} is readable by every user (mode {:o}): \
                 `chmod 600 {shown}` (or 640 with a group of the node's user)",
                mode & 0o777
            ));
        }
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("credentials file {shown}: {e}"))?;
    let credentials =
        Credentials::parse(&text).map_err(|e| format!("credentials file {shown}, {e}"))?;
    Ok((credentials, Sha256::digest(text.as_bytes()).into()))
}

impl Auth {
    /// Loads the credentials file at `path`.
    pub fn load(path: &Path) -> Result<Auth, String> {
        let (credentials, seen) = read(path)?;
        let (apps, admins, cluster) = credentials.counts();
        tracing::info!(
            path = %path.display(),
            apps,
            admins,
            cluster,
            "authentication on: credentials loaded"
        );
        Ok(Auth {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(credentials)),
            seen: Mutex::new(seen),
        })
    }

    /// The credentials in force.
    pub fn credentials(&self) -> Arc<Credentials> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the file again if it changed. A file that no longer parses
    /// (or went away) leaves the credentials in force and is reported.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let text = std::fs::read(&self.path)
            .map_err(|e| format!("credentials file {}: {e}", self.path.display()))?;
        let now: [u8; 32] = Sha256::digest(&text).into();
        if *self.seen.lock().unwrap_or_else(|e| e.into_inner()) == now {
            return Ok(false);
        }
        let (credentials, seen) = read(&self.path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(credentials);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = seen;
        Ok(true)
    }

    /// Re-reads the file whenever it changes, until `stop` resolves.
    pub async fn watch(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let mut complained = false;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RELOAD_EVERY) => {}
                _ = &mut stop => return,
            }
            match self.reload_if_changed() {
                Ok(true) => {
                    let (apps, admins, cluster) = self.credentials().counts();
                    tracing::info!(apps, admins, cluster, "credentials reloaded");
                    complained = false;
                }
                Ok(false) => {}
                Err(e) if !complained => {
                    tracing::error!("{e}; the credentials read before stay in force");
                    complained = true;
                }
                Err(_) => {}
            }
        }
    }

    /// Who presents `token` on `plane`, or why it is refused.
    pub fn admit(&self, port: Port, token: Option<&str>) -> Result<Identity, String> {
        let token = token.ok_or("the node requires a token and none was given")?;
        let credentials = self.credentials();
        let identity = credentials
            .identify(token)
            .ok_or("the token is not one the node takes (wrong, or revoked)")?;
        match (port, identity) {
            (Port::Client, Identity::Application(_) | Identity::Admin(_))
            | (Port::Peer, Identity::Cluster) => Ok(identity.clone()),
            (Port::Client, Identity::Cluster) => {
                Err("the cluster's token is for the peer port, not the client port".into())
            }
            (Port::Peer, other) => Err(format!(
                "an `{}` token on the peer port, which takes the cluster's only",
                other.role()
            )),
        }
    }

    /// An admin's token: the admin plane's and the metrics page's check.
    pub fn admin(&self, token: Option<&str>) -> Result<(), String> {
        match token.map(|t| self.credentials().identify(t).cloned()) {
            None => Err("an admin token is required (authorization: Bearer TOKEN)".into()),
            Some(Some(Identity::Admin(_))) => Ok(()),
            Some(Some(other)) => Err(format!(
                "an `{}` token, where an admin's is required",
                other.role()
            )),
            Some(None) => Err("the token is not one the node takes (wrong, or revoked)".into()),
        }
    }

    /// The token this node presents to other nodes.
    pub fn cluster_token(&self) -> Option<crucial::Token> {
        self.credentials().cluster_token().cloned()
    }
}

/// The id a client of `application` is known by on every node: a digest of
/// both, so two applications' clients never share one (a client cannot
/// choose an id that lands on another application's without inverting
/// SHA-256). Deterministic, so it is the same on every node and across
/// restarts, as replicated remembered replies need.
pub fn scoped_client_id(application: &str, client_id: u64) -> u64 {
    let mut hash = Sha256::new();
    hash.update(b"crucial client id\0");
    hash.update(application.as_bytes());
    hash.update([0]);
    hash.update(client_id.to_le_bytes());
    let digest: [u8; 32] = hash.finalize().into();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The id a connection's requests are remembered under, for `identity`.
pub fn client_id_of(identity: &Identity, client_id: u64) -> u64 {
    match identity {
        Identity::Application(app) => scoped_client_id(app, client_id),
        // Admins among themselves, apart from every application.
        Identity::Admin(_) => scoped_client_id("\0admin", client_id),
        // Nodes: their peer ids, as without authentication.
        Identity::Cluster => client_id,
    }
}

/// Whether a node may listen on `addrs` without credentials: only on
/// loopback addresses, unless `insecure` says the operator means it.
pub fn check_exposure(addrs: &[(&str, &str)], insecure: bool) -> Result<(), String> {
    if insecure {
        return Ok(());
    }
    for (flag, addr) in addrs {
        let loopback = match addr.parse::<std::net::SocketAddr>() {
            Ok(sa) => sa.ip().is_loopback(),
            // A host name: loopback only if it is `localhost`.
            Err(_) => addr
                .rsplit_once(':')
                .is_some_and(|(host, _)| host == "localhost"),
        };
        if !loopback {
            return Err(format!(
                "refusing to serve {flag} {addr} without authentication: anyone who reaches it \
                 could call, read and delete every object. Give --credentials FILE (see the \
                 guide's Security chapter), or --insecure if the network itself is trusted"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_scoped_to_their_application() {
        let a = scoped_client_id("shop", 4321);
        assert_eq!(a, scoped_client_id("shop", 4321), "the same on every node");
        assert_ne!(a, scoped_client_id("blog", 4321));
        assert_ne!(a, scoped_client_id("shop", 4322));
        // No ambiguity between the name and the id's bytes.
        assert_ne!(scoped_client_id("ab", 1), scoped_client_id("a", 1));
        let admin = Identity::Admin("ops".into());
        assert_ne!(client_id_of(&admin, 4321), a);
        assert_eq!(client_id_of(&Identity::Cluster, 4321), 4321);
    }

    #[test]
    fn only_loopback_is_served_without_credentials() {
        assert!(check_exposure(&[("--listen", "127.0.0.1:7000")], false).is_ok());
        assert!(check_exposure(&[("--listen", "[::1]:7000")], false).is_ok());
        assert!(check_exposure(&[("--listen", "localhost:7000")], false).is_ok());
        let refused = check_exposure(&[("--admin", "0.0.0.0:7100")], false).unwrap_err();
        assert!(refused.contains("--admin 0.0.0.0:7100"), "{refused}");
        assert!(refused.contains("--credentials FILE"), "{refused}");
        assert!(check_exposure(&[("--listen", "10.0.0.5:7000")], false).is_err());
        assert!(check_exposure(&[("--listen", "0.0.0.0:7000")], true).is_ok());
    }

    #[test]
    fn each_port_takes_its_roles_only() {
        let dir = std::env::temp_dir().join(format!("crucial-auth-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("credentials");
        std::fs::write(
            &path,
            "app shop shop-token-0000000001\nadmin ops admin-token-000000001\n\
             cluster nodes cluster-token-0000001\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let refused = Auth::load(&path).unwrap_err();
            assert!(refused.contains("chmod 600"), "{refused}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let auth = Auth::load(&path).expect("loads");
        let shop = Identity::Application("shop".into());
        assert_eq!(
            auth.admit(Port::Client, Some("shop-token-0000000001")),
            Ok(shop)
        );
        assert!(auth
            .admit(Port::Client, None)
            .unwrap_err()
            .contains("none was given"));
        assert!(auth
            .admit(Port::Client, Some("cluster-token-0000001"))
            .unwrap_err()
            .contains("peer port"));
        assert!(auth
            .admit(Port::Peer, Some("shop-token-0000000001"))
            .is_err());
        assert_eq!(
            auth.admit(Port::Peer, Some("cluster-token-0000001")),
            Ok(Identity::Cluster)
        );
        assert!(auth.admin(Some("admin-token-000000001")).is_ok());
        assert!(auth.admin(Some("shop-token-0000000001")).is_err());
        assert!(auth.admin(None).is_err());

        // Rotation: the file changes, the node takes the new token and
        // refuses the old one, with no restart.
        std::fs::write(&path, "app shop shop-token-0000000002\n").unwrap();
        assert_eq!(auth.reload_if_changed(), Ok(true));
        assert!(auth
            .admit(Port::Client, Some("shop-token-0000000001"))
            .is_err());
        assert!(auth
            .admit(Port::Client, Some("shop-token-0000000002"))
            .is_ok());
        // A broken file leaves the credentials in force.
        std::fs::write(&path, "app shop short\n").unwrap();
        assert!(auth.reload_if_changed().is_err());
        assert!(auth
            .admit(Port::Client, Some("shop-token-0000000002"))
            .is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
