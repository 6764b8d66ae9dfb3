//! TLS for a client connection (rustls with ring): the settings a
//! [`crate::Config`] carries, and the stream a connection runs over.
//!
//! The caller that reads and the one that writes use the stream at once, so
//! the rustls connection sits behind a lock that no one holds while waiting
//! on the socket for a read: a reader takes the lock to look for decrypted
//! bytes, lets go of it to wait for ciphertext, and takes it again to decrypt
//! what came. Writers encrypt and write under the lock (a write that blocks
//! holds it, as the socket's own write would hold the writer).

use super::stream::Stream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// Ciphertext read from the socket at once.
const CHUNK: usize = 16 * 1024;

/// How a client verifies the nodes' certificates: the CA that signed them,
/// and optionally the name to expect in them (default: the host of the
/// address dialled).
///
/// It travels with the cloud threads a client starts (as the CA's PEM and
/// the name), so that they reach the same nodes the same way.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "TlsSettings", into = "TlsSettings")]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
    ca_pem: Arc<str>,
    server_name: Option<String>,
}

/// What [`Tls`] is made of, as it travels to a cloud thread.
#[derive(serde::Serialize, serde::Deserialize)]
struct TlsSettings {
    ca_pem: String,
    #[serde(default)]
    server_name: Option<String>,
}

impl From<Tls> for TlsSettings {
    fn from(tls: Tls) -> TlsSettings {
        TlsSettings {
            ca_pem: tls.ca_pem.to_string(),
            server_name: tls.server_name,
        }
    }
}

impl TryFrom<TlsSettings> for Tls {
    type Error = String;

    fn try_from(settings: TlsSettings) -> Result<Tls, String> {
        let tls = Tls::with_ca_pem(settings.ca_pem)?;
        Ok(match settings.server_name {
            Some(name) => tls.server_name(name),
            None => tls,
        })
    }
}

impl PartialEq for Tls {
    fn eq(&self, other: &Tls) -> bool {
        self.ca_pem == other.ca_pem && self.server_name == other.server_name
    }
}

impl Eq for Tls {}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Trusts the CA certificates (PEM) in `path`.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<Tls, String> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        Tls::with_ca_pem(pem).map_err(|e| format!("CA file {}: {e}", path.display()))
    }

    /// Trusts the CA certificates in `pem` (PEM `CERTIFICATE` blocks).
    ///
    /// ```
    /// let error = crucial::Tls::with_ca_pem("not a certificate").unwrap_err();
    /// assert!(error.contains("no certificate"), "{error}");
    /// ```
    pub fn with_ca_pem(pem: impl Into<String>) -> Result<Tls, String> {
        let pem: String = pem.into();
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| e.to_string())?;
        }
        if roots.is_empty() {
            return Err("no certificate in it (expected PEM `CERTIFICATE` blocks)".to_string());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            config: Arc::new(config),
            ca_pem: pem.into(),
            server_name: None,
        })
    }

    /// The rustls configuration: for a node's own links to the other
    /// members, which trust the same CA.
    #[doc(hidden)]
    pub fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }

    /// Expects `name` in every node's certificate instead of the host of
    /// the address dialled (for nodes reached by IP whose certificates name
    /// them by DNS).
    pub fn server_name(mut self, name: impl Into<String>) -> Tls {
        self.server_name = Some(name.into());
        self
    }

    /// Runs the handshake with the node at `addr` over `tcp` (whose read
    /// timeout bounds it).
    pub(crate) fn connect(&self, addr: &str, mut tcp: TcpStream) -> Result<TlsStream, String> {
        let host = match &self.server_name {
            Some(name) => name.clone(),
            None => crucial_protocol::wire::host_of(addr).to_string(),
        };
        let name = ServerName::try_from(host.clone())
            .map_err(|e| format!("`{host}` is not a name a certificate can hold: {e}"))?;
        let mut conn = rustls::ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut tcp) {
                return Err(
                    match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                        Some(rustls::Error::InvalidMessage(_)) => {
                            format!("TLS handshake: the node does not speak TLS on this port ({e})")
                        }
                        _ => format!("TLS handshake: {e}"),
                    },
                );
            }
        }
        Ok(TlsStream {
            tcp,
            tls: Mutex::new(Session {
                conn,
                plain: Vec::new(),
                closed: false,
            }),
        })
    }
}

struct Session {
    conn: rustls::ClientConnection,
    /// Decrypted bytes not yet read.
    plain: Vec<u8>,
    /// The node sent its `close_notify`.
    closed: bool,
}

/// A TLS connection to a node.
pub struct TlsStream {
    tcp: TcpStream,
    tls: Mutex<Session>,
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// The socket under the TLS session.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        self.tls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands out decrypted bytes if there are any (`None`: wait for more).
    fn take_plain(&self, buf: &mut [u8]) -> Option<usize> {
        let mut session = self.lock();
        if !session.plain.is_empty() {
            let n = buf.len().min(session.plain.len());
            buf[..n].copy_from_slice(&session.plain[..n]);
            session.plain.drain(..n);
            return Some(n);
        }
        session.closed.then_some(0)
    }

    /// Decrypts `ciphertext` into the session's plaintext, and sends what
    /// rustls answers (alerts, key updates).
    fn feed(&self, mut ciphertext: &[u8]) -> io::Result<()> {
        let mut session = self.lock();
        let session = &mut *session;
        let mut chunk = [0u8; CHUNK];
        while !ciphertext.is_empty() {
            if session.conn.read_tls(&mut ciphertext)? == 0 {
                break;
            }
            session.conn.process_new_packets().map_err(invalid)?;
            loop {
                match session.conn.reader().read(&mut chunk) {
                    Ok(0) => {
                        session.closed = true;
                        break;
                    }
                    Ok(n) => session.plain.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        while session.conn.wants_write() {
            session.conn.write_tls(&mut &self.tcp)?;
        }
        Ok(())
    }
}

impl Stream for TlsStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.take_plain(buf) {
                return Ok(n);
            }
            let mut chunk = [0u8; CHUNK];
            let n = Read::read(&mut &self.tcp, &mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.feed(&chunk[..n])?;
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.take_plain(buf) {
                return Ok(n);
            }
            let mut chunk = [0u8; CHUNK];
            let n = Stream::try_read(&self.tcp, &mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.feed(&chunk[..n])?;
        }
    }

    fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        let mut session = self.lock();
        while !buf.is_empty() {
            let n = session.conn.writer().write(buf)?;
            buf = &buf[n..];
            while session.conn.wants_write() {
                session.conn.write_tls(&mut &self.tcp)?;
            }
        }
        Ok(())
    }

    fn shutdown(&self) {
        Stream::shutdown(&self.tcp);
    }
}
