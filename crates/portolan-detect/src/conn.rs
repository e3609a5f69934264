//! A connection with bounded reads: every read has a deadline, and the bytes read over
//! the connection's life are capped, so a hostile peer costs time and memory we chose.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

/// Any byte stream we can probe: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    total: usize,
    cap: usize,
    timeout: Duration,
    eof: bool,
    plain: bool,
}

/// How a read ended when its condition was not met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Done,
    Eof,
    Timeout,
    Cap,
}

impl Conn {
    pub fn new(io: Box<dyn Io>, cap: usize, timeout: Duration) -> Conn {
        Conn {
            io,
            buf: Vec::new(),
            total: 0,
            cap,
            timeout,
            eof: false,
            plain: true,
        }
    }

    /// Marks the connection as running over TLS.
    pub fn tls(mut self) -> Conn {
        self.plain = false;
        self
    }

    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// True when bytes were read but not yet consumed.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    pub fn into_io(self) -> Box<dyn Io> {
        self.io
    }

    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + self.timeout;
        match timeout_at(deadline, async {
            self.io.write_all(data).await?;
            self.io.flush().await
        })
        .await
        {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// Reads until `done` finds a complete message at the front of the buffer (it returns
    /// the message's length), or until end of stream, the cap or `wait` runs out. Returns
    /// the message (or whatever arrived) and why it stopped.
    pub async fn read_until(
        &mut self,
        wait: Duration,
        done: impl Fn(&[u8]) -> Option<usize>,
    ) -> io::Result<(Vec<u8>, Stop)> {
        let deadline = Instant::now() + wait;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(n) = done(&self.buf) {
                let n = n.min(self.buf.len());
                let rest = self.buf.split_off(n);
                return Ok((std::mem::replace(&mut self.buf, rest), Stop::Done));
            }
            let stop = if self.eof {
                Some(Stop::Eof)
            } else if self.total >= self.cap {
                Some(Stop::Cap)
            } else {
                None
            };
            if let Some(stop) = stop {
                return Ok((std::mem::take(&mut self.buf), stop));
            }
            let room = (self.cap - self.total).min(chunk.len());
            match timeout_at(deadline, self.io.read(&mut chunk[..room])).await {
                Err(_) => return Ok((std::mem::take(&mut self.buf), Stop::Timeout)),
                Ok(Ok(0)) => self.eof = true,
                Ok(Ok(n)) => {
                    self.total += n;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Ok(Err(e)) => {
                    if self.buf.is_empty() {
                        return Err(e);
                    }
                    self.eof = true;
                }
            }
        }
    }

    /// Reads with the connection's own timeout.
    pub async fn read(
        &mut self,
        done: impl Fn(&[u8]) -> Option<usize>,
    ) -> io::Result<(Vec<u8>, Stop)> {
        self.read_until(self.timeout, done).await
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Where a reply of three-digit-coded lines ends, if it is complete.
pub fn end_of_coded_reply(b: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(i) = b[start..].iter().position(|c| *c == b'\n') {
        let line = &b[start..start + i + 1];
        let is_last = line.len() >= 4
            && line[..3].iter().all(u8::is_ascii_digit)
            && (line[3] == b' ' || line[3] == b'\r' || line[3] == b'\n');
        let not_coded = line.len() < 4 || !line[..3].iter().all(u8::is_ascii_digit);
        start += i + 1;
        if is_last || (start == i + 1 && not_coded) {
            return Some(start);
        }
    }
    None
}

/// Where a reply ends that is terminated by a line holding only `.` (POP3, NNTP lists),
/// or that is a one-line error.
pub fn end_of_dot_list(b: &[u8]) -> Option<usize> {
    if b.starts_with(b"-ERR") || (b.len() >= 3 && (b[0] == b'4' || b[0] == b'5')) {
        return b.iter().position(|c| *c == b'\n').map(|i| i + 1);
    }
    if b.starts_with(b".\r\n") {
        return Some(3);
    }
    find(b, b"\r\n.\r\n")
        .map(|i| i + 5)
        .or_else(|| find(b, b"\n.\n").map(|i| i + 3))
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coded_reply_ends_on_the_last_line() {
        let r = b"250-host\r\n250-STARTTLS\r\n250 SMTPUTF8\r\nextra";
        assert_eq!(end_of_coded_reply(r), Some(r.len() - 5));
        assert_eq!(end_of_coded_reply(b"250-host\r\n250-X"), None);
        assert_eq!(end_of_coded_reply(b"220 ok\r\n"), Some(8));
        assert_eq!(end_of_coded_reply(b"hello\r\n"), Some(7));
    }

    #[test]
    fn dot_list_ends_on_the_dot() {
        assert_eq!(end_of_dot_list(b"+OK\r\nTOP\r\n.\r\n"), Some(13));
        assert_eq!(end_of_dot_list(b"-ERR no\r\n"), Some(9));
        assert_eq!(end_of_dot_list(b"+OK\r\nTOP\r\n"), None);
    }
}
