//! Who may connect to the host's ports: processes of the host's own user.
//!
//! The Invoke API runs the functions, and the Runtime API hands each
//! environment its invocations, which carry the application's token: a
//! stranger on either port could run code as the application or read its
//! token. Both listen on loopback, where the kernel knows which user owns
//! each end of a TCP connection (`/proc/net/tcp`, the `uid` column), so the
//! host accepts a connection only if the socket at the other end belongs to
//! its own user, as a Unix socket with mode 0600 would. Encryption adds
//! nothing on loopback: only root can read it, and root can read the
//! processes too. The Invoke API on another address needs `--insecure`
//! (anyone who reaches it may invoke); see the guide's Security chapter.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use tokio::net::{TcpListener, TcpStream};

/// Who a port takes connections from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Processes of the host's own user only (the default).
    OwnUser,
    /// Anyone who reaches the port (`--insecure`).
    Anyone,
}

/// A listener that drops the connections `access` does not allow.
pub struct Guarded {
    listener: TcpListener,
    access: Access,
    /// This process's user, read once (or why it cannot be).
    me: Result<u32, String>,
}

impl Guarded {
    /// Guards `listener`.
    pub fn new(listener: TcpListener, access: Access) -> Guarded {
        Guarded {
            listener,
            access,
            me: own_uid().map_err(|e| e.to_string()),
        }
    }

    fn allows(&self, stream: &TcpStream, peer: SocketAddr) -> bool {
        if self.access == Access::Anyone || cfg!(not(target_os = "linux")) {
            // (Only Linux says who owns a socket; elsewhere loopback is all.)
            return true;
        }
        let owner = stream
            .local_addr()
            .and_then(|local| owner_of(peer, local))
            .map_err(|e| e.to_string());
        match (&owner, &self.me) {
            (Ok(Some(owner)), Ok(me)) if owner == me => true,
            (Ok(Some(owner)), Ok(me)) => {
                tracing::warn!(%peer, owner, me, "refused a connection of another user");
                false
            }
            (Ok(None), _) => {
                tracing::warn!(%peer, "refused a connection from no local process of this user");
                false
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(%peer, "refused a connection whose user cannot be told: {e}");
                false
            }
        }
    }
}

impl axum::serve::Listener for Guarded {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) if self.allows(&stream, peer) => return (stream, peer),
                Ok(_) => {}
                // Out of descriptors, say: wait rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// The effective user of this process.
fn own_uid() -> io::Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

/// The user owning the socket at the other end of the connection from
/// `peer` to `local`, if it is a socket of this machine.
fn owner_of(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    let table = match peer.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    Ok(owner_in(&std::fs::read_to_string(table)?, peer, local))
}

/// [`owner_of`] in the text of a `/proc/net/tcp` table: the line whose
/// local address is `peer` and remote address is `local`.
fn owner_in(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let (want_local, want_remote) = (hex(peer), hex(local));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (here, there, uid) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
        (here.eq_ignore_ascii_case(&want_local) && there.eq_ignore_ascii_case(&want_remote))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// An address as `/proc/net/tcp` prints it: the address's 32-bit words in
/// the machine's byte order, in hex, then the port.
fn hex(addr: SocketAddr) -> String {
    let words = |octets: &[u8]| {
        octets
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect::<String>()
    };
    let ip = match addr.ip() {
        IpAddr::V4(ip) => words(&ip.octets()),
        IpAddr::V6(ip) => words(&ip.octets()),
    };
    format!("{ip}:{:04X}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_the_other_end_is_read_from_the_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:2329 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n\
            1: 0100007F:D431 0100007F:2329 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 20 4 30 10 -1\n\
            2: 0100007F:2329 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1\n";
        let host: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:54321".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(hex(host), "0100007F:2329");
            assert_eq!(owner_in(table, peer, host), Some(1001));
        }
        let stranger: SocketAddr = "10.0.0.9:54321".parse().unwrap();
        assert_eq!(owner_in(table, stranger, host), None);
    }

    #[tokio::test]
    async fn a_connection_of_this_process_is_of_its_own_user() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let owner = owner_of(peer, server.local_addr().unwrap()).unwrap();
        assert_eq!(owner, Some(own_uid().unwrap()));
    }
}
