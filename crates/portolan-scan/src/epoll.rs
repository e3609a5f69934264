//! epoll through `rustix`: as fast as the hand-written wrapper it replaced (see
//! docs/development.md, "Syscalls: hand-written or rustix"), and no `unsafe`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{Timespec, epoll};

/// An epoll instance with room for `cap` events per wait.
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<epoll::Event>,
}

impl Epoll {
    pub fn new(cap: usize) -> io::Result<Epoll> {
        Ok(Epoll {
            fd: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            events: Vec::with_capacity(cap.max(1)),
        })
    }

    /// Watches `fd` for writability and errors, reporting `token`.
    pub fn add_writable(&self, fd: impl AsFd, token: u64) -> io::Result<()> {
        epoll::add(
            &self.fd,
            fd,
            epoll::EventData::new_u64(token),
            epoll::EventFlags::OUT | epoll::EventFlags::ERR,
        )?;
        Ok(())
    }

    /// Waits up to `timeout` (whole milliseconds, at most a minute) and returns the
    /// tokens that are ready.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<impl Iterator<Item = u64> + '_> {
        let ms = timeout.as_millis().min(60_000) as i64;
        let ts = Timespec {
            tv_sec: ms / 1000,
            tv_nsec: (ms % 1000) * 1_000_000,
        };
        self.events.clear();
        match epoll::wait(
            &self.fd,
            rustix::buffer::spare_capacity(&mut self.events),
            Some(&ts),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => self.events.clear(),
            Err(e) => return Err(e.into()),
        }
        Ok(self.events.iter().map(|e| e.data.u64()))
    }
}

impl AsRawFd for Epoll {
    /// The epoll descriptor itself: readable while events are ready, so `poll` on it
    /// waits for any watched socket.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
