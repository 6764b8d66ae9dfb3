//! TLS on a node's client port, with rustls (ring), as a [`Transport`]: the
//! reader and the outbox share the stream as they share a plain TCP one.
//!
//! Records are decrypted and encrypted under a short lock around the rustls
//! connection; the TCP socket is read and written with `try_read` and
//! `try_write`, so no call waits while holding the lock, and the readiness
//! futures are the socket's own. Ciphertext the socket did not take stays
//! in rustls's buffer: [`Transport::pending`] says so, and the outbox's
//! flusher writes it once the socket is writable (a reply is not "sent"
//! until its ciphertext is).

use super::transport::Transport;
use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpStream;

/// The first byte of every TLS connection (a handshake record).
const HANDSHAKE_RECORD: u8 = 0x16;

/// Ciphertext read from the socket at once.
const CHUNK: usize = 16 * 1024;

/// The node's TLS settings, from PEM files: its certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it (expected PEM `CERTIFICATE` blocks)",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert and --tls-key do not make a certificate: {e}"))?;
    Ok(Arc::new(config))
}

/// How this node verifies the other members' certificates when it
/// connects to their peer ports: the CA (PEM) that signed them.
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    crucial::Tls::with_ca_file(ca)
        .map(|tls| tls.rustls_config())
        .map_err(|e| format!("--tls-ca: {e}"))
}

/// Why a TLS handshake did not finish.
#[derive(Debug)]
pub enum Refused {
    /// The client spoke something else first (plain frames, say): it can be
    /// told so in plain frames.
    NotTls(TcpStream),
    /// The socket failed, or the handshake did (`InvalidData`).
    Io(io::Error),
}

/// A TLS connection over a TCP socket.
pub struct TlsTransport {
    tcp: TcpStream,
    tls: Mutex<rustls::Connection>,
    /// Data that came in the same read as the handshake's last message
    /// (a client sends its `Hello` right behind its `Finished`), handed out
    /// by the first read.
    early: Mutex<BytesMut>,
    has_early: AtomicBool,
}

/// `try_write` to the socket as `io::Write`, for `write_tls`.
struct TryWriter<'a>(&'a TcpStream);

impl Write for TryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsTransport {
    /// Runs the server side of the handshake on `tcp` (the caller bounds
    /// its time).
    pub async fn accept(
        tcp: TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<TlsTransport, Refused> {
        let mut first = [0u8; 1];
        match tcp.peek(&mut first).await {
            Ok(0) => return Err(Refused::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) if first[0] != HANDSHAKE_RECORD => return Err(Refused::NotTls(tcp)),
            Ok(_) => {}
            Err(e) => return Err(Refused::Io(e)),
        }
        let conn = rustls::ServerConnection::new(config).map_err(|e| Refused::Io(invalid(e)))?;
        let transport = TlsTransport::new(tcp, conn.into());
        transport.handshake().await.map_err(Refused::Io)?;
        Ok(transport)
    }

    /// Runs the client side of the handshake with the member at `addr`
    /// (its certificate must name the host of `addr`); the caller bounds
    /// its time.
    pub async fn connect(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        addr: &str,
    ) -> io::Result<TlsTransport> {
        let host = crucial_protocol::wire::host_of(addr).to_string();
        let name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(invalid)?;
        let transport = TlsTransport::new(tcp, conn.into());
        transport.handshake().await?;
        Ok(transport)
    }

    fn new(tcp: TcpStream, conn: rustls::Connection) -> TlsTransport {
        TlsTransport {
            tcp,
            tls: Mutex::new(conn),
            early: Mutex::new(BytesMut::new()),
            has_early: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, rustls::Connection> {
        self.tls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads and writes records until the handshake is done and its last
    /// flight is on the socket. A failed handshake sends its alert first.
    async fn handshake(&self) -> io::Result<()> {
        loop {
            let (handshaking, wants_write) = {
                let conn = self.lock();
                (conn.is_handshaking(), conn.wants_write())
            };
            if wants_write {
                if !self.flush()? {
                    self.tcp.writable().await?;
                }
                continue;
            }
            if !handshaking {
                return Ok(());
            }
            self.tcp.readable().await?;
            let mut chunk = [0u8; CHUNK];
            let n = match self.tcp.try_read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = self.take(&chunk[..n], &mut early) {
                drop(early);
                // The alert rustls queued, if the socket takes it.
                let _ = self.flush();
                return Err(e);
            }
            self.has_early.store(!early.is_empty(), Ordering::Release);
        }
    }

    /// Writes the ciphertext rustls holds; `Ok(false)`: the socket is full.
    fn flush(&self) -> io::Result<bool> {
        let mut conn = self.lock();
        while conn.wants_write() {
            match conn.write_tls(&mut TryWriter(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Feeds ciphertext to rustls and appends the plaintext it yields to
    /// `plain` (after each record batch, so rustls's plaintext buffer never
    /// fills). Returns whether the peer closed the TLS session.
    fn take(&self, mut ciphertext: &[u8], plain: &mut BytesMut) -> io::Result<bool> {
        let mut conn = self.lock();
        let mut closed = false;
        while !ciphertext.is_empty() {
            if conn.read_tls(&mut ciphertext)? == 0 {
                break;
            }
            conn.process_new_packets().map_err(invalid)?;
            closed |= drain(&mut conn, plain)?;
        }
        Ok(closed)
    }
}

/// Moves every decrypted byte rustls holds into `plain`; whether the peer
/// sent its `close_notify`.
fn drain(conn: &mut rustls::Connection, plain: &mut BytesMut) -> io::Result<bool> {
    let mut chunk = [0u8; CHUNK];
    loop {
        match conn.reader().read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => plain.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

impl Transport for TlsTransport {
    async fn readable(&self) -> io::Result<()> {
        if self.has_early.load(Ordering::Acquire) {
            return Ok(());
        }
        self.tcp.readable().await
    }

    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        if self.has_early.swap(false, Ordering::AcqRel) {
            let early = std::mem::take(&mut *self.early.lock().unwrap_or_else(|e| e.into_inner()));
            buf.extend_from_slice(&early);
            return Ok(early.len());
        }
        let before = buf.len();
        loop {
            let mut chunk = [0u8; CHUNK];
            let n = match self.tcp.try_read(&mut chunk) {
                // A socket closed without `close_notify` is closed too: the
                // frames tell a truncated request apart.
                Ok(0) => return Ok(buf.len() - before),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && buf.len() > before => {
                    return Ok(buf.len() - before)
                }
                Err(e) => return Err(e),
            };
            let closed = self.take(&chunk[..n], buf)?;
            // Post-handshake messages (session tickets, key updates) and alerts.
            let _ = self.flush()?;
            if closed {
                return Ok(buf.len() - before);
            }
        }
    }

    async fn writable(&self) -> io::Result<()> {
        self.tcp.writable().await
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        // Older ciphertext first: replies leave in order.
        if !self.flush()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.lock().writer().write(buf)?;
        // What the socket does not take now stays pending for the flusher.
        self.flush()?;
        Ok(n)
    }

    fn pending(&self) -> bool {
        self.lock().wants_write()
    }
}
