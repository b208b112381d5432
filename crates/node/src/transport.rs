//! DNS on real sockets: the TCP framing (a two-byte length before each message, RFC 1035
//! 4.2.2), an accept loop that stops on a flag, and one exchange with an upstream server over
//! UDP or TCP.
//!
//! Everything here reads untrusted bytes: a frame is read as its length says, and a UDP
//! datagram that is not the answer (another ID, or not DNS) is skipped; nothing panics.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use fqdnpath_cache::observe;
use fqdnpath_datapath::PROTO_TCP;
use fqdnpath_policy::policymap::Protocol;

/// The read timeout of each connection [`accept_loop`] hands on.
pub const CONNECTION_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest DNS message over UDP this node reads (EDNS0's common buffer size is 1232 to
/// 4096).
const UDP_BUFFER: usize = 4096;

/// Why a DNS message could not be sent or received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The message does not fit the two-byte length of a TCP frame.
    #[error("a DNS message over 65535 bytes ({len} bytes)")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The upstream closed the connection without an answer.
    #[error("no answer")]
    NoAnswer,
    /// A socket operation failed (a timeout among them).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one DNS message framed for TCP; `None` at a clean end of stream.
pub fn read_frame(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message)?;
    Ok(Some(message))
}

/// Writes one DNS message framed for TCP, in one write.
pub fn write_frame(stream: &mut TcpStream, message: &[u8]) -> Result<(), TransportError> {
    let len =
        u16::try_from(message.len()).map_err(|_| TransportError::TooLong { len: message.len() })?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    Ok(stream.write_all(&framed)?)
}

/// Accepts connections on `listener` until `stop`, handing each to `handle` (one at a time),
/// blocking again and with a read timeout of [`CONNECTION_READ_TIMEOUT`]. The listener is
/// polled (made non-blocking), so that `stop` is seen within a few milliseconds.
pub fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    mut handle: impl FnMut(TcpStream, SocketAddr),
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if stream.set_nonblocking(false).is_ok()
                    && stream
                        .set_read_timeout(Some(CONNECTION_READ_TIMEOUT))
                        .is_ok()
                {
                    handle(stream, peer);
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
    Ok(())
}

/// Sends `query` to `server` over `proto` (TCP, or else UDP) and returns its answer: over
/// UDP, the first datagram that is DNS and carries the query's ID. Each read waits at most
/// `timeout`.
pub fn exchange(
    proto: Protocol,
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    if proto == PROTO_TCP {
        let mut stream = TcpStream::connect_timeout(&server, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        write_frame(&mut stream, query)?;
        return read_frame(&mut stream)?.ok_or(TransportError::NoAnswer);
    }
    let id = query.get(..2).map(|b| [b[0], b[1]]);
    let unspecified: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(unspecified)?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send(query)?;
    let mut buf = [0u8; UDP_BUFFER];
    loop {
        let n = socket.recv(&mut buf)?;
        // A stray datagram with another ID is not the answer.
        if buf.get(..2).map(|b| [b[0], b[1]]) == id && observe(&buf[..n]).is_ok() {
            return Ok(buf[..n].to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn a_frame_arrives_whole_and_a_clean_close_is_none() {
        let (mut client, mut server) = pair();
        write_frame(&mut client, b"\x12\x34hello").unwrap();
        write_frame(&mut client, b"").unwrap();
        drop(client);
        assert_eq!(
            read_frame(&mut server).unwrap().as_deref(),
            Some(&b"\x12\x34hello"[..])
        );
        assert_eq!(read_frame(&mut server).unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(read_frame(&mut server).unwrap(), None);
    }

    #[test]
    fn a_truncated_frame_is_an_error() {
        let (mut client, mut server) = pair();
        client.write_all(&[0, 10, 1, 2, 3]).unwrap();
        drop(client);
        let err = read_frame(&mut server).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_message_over_65535_bytes_is_not_framed() {
        let (mut client, _server) = pair();
        let err = write_frame(&mut client, &vec![0; 70_000]).unwrap_err();
        assert!(matches!(err, TransportError::TooLong { len: 70_000 }));
    }
}
