//! The byte stream a client connection runs over. The caller that holds the
//! reading role and the writer (a caller or the flusher thread) use it at
//! the same time, so every method takes `&self`: plain TCP allows that as is
//! (`&TcpStream` reads and writes), and a TLS stream can implement it with
//! its record state behind a lock. `try_read` is what the short spin before
//! a blocking read polls with.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

/// A client connection's byte stream (see the module's documentation).
pub trait Stream: Send + Sync + 'static {
    /// Reads into `buf`, waiting until something arrives (`Ok(0)`: closed).
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Reads what has arrived without waiting (`WouldBlock`: nothing yet).
    fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Writes all of `buf`.
    fn write_all(&self, buf: &[u8]) -> std::io::Result<()>;
    /// Closes both directions (a blocked read returns).
    fn shutdown(&self);
}

impl Stream for TcpStream {
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        nonblocking_read(self, buf)
    }

    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        Write::write_all(&mut &*self, buf)
    }

    fn shutdown(&self) {
        let _ = TcpStream::shutdown(self, Shutdown::Both);
    }
}

/// One `recv` that does not block (`MSG_DONTWAIT`), for the spin.
#[cfg(unix)]
fn nonblocking_read(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Without `MSG_DONTWAIT` the spin never finds data and the caller just blocks.
#[cfg(not(unix))]
fn nonblocking_read(_: &TcpStream, _: &mut [u8]) -> std::io::Result<usize> {
    Err(std::io::ErrorKind::WouldBlock.into())
}
