//! Synchronous execution, where the kernel has no AIO (`ENOSYS`): each request runs when it
//! is queued, as `pread`/`pwrite`/`fsync`/`fdatasync` for files. A stream request behaves as in
//! the asynchronous mode, only blocking the call: a read waits for data and takes what is there,
//! a write goes on until all of it is written (or an error stops it, and then completes with the
//! count written), whether or not the descriptor is `O_NONBLOCK`.

use rustix::event::{PollFd, PollFlags};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;

use super::{Aio, Op, SyncMode};
use crate::request::Buffer;

/// Waits (blocking) until `fd` is ready for `flags`; a signal does not end the wait.
fn wait_ready(fd: BorrowedFd<'_>, flags: PollFlags) -> Result<(), Errno> {
    let mut pfd = [PollFd::new(&fd, flags)];
    loop {
        match rustix::event::poll(&mut pfd, None) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// `op` on a stream, retried after `EINTR`, and after `EAGAIN` (an `O_NONBLOCK` descriptor) once
/// `fd` is ready for `flags`.
fn retrying(
    fd: BorrowedFd<'_>,
    flags: PollFlags,
    mut op: impl FnMut() -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    loop {
        match op() {
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait_ready(fd, flags)?,
            other => return other,
        }
    }
}

impl<'a, 'scope, 'env, const N: usize> Aio<'a, 'scope, 'env, N> {
    /// Synchronous mode: performs the operation now.
    pub(super) fn run_synchronously(&self, i: usize) {
        let result = {
            let mut inner = self.inner.borrow_mut();
            let stream = inner.slots[i].stream();
            let Some(cb) = inner.slots[i].cb.as_mut() else {
                return;
            };
            let fd = cb.fd;
            match (&mut cb.buffer, cb.op) {
                (Buffer::Read(b), Op::Read) if stream => {
                    retrying(fd, PollFlags::IN, || rustix::io::read(fd, &mut **b))
                }
                (Buffer::Read(b), Op::Read) => rustix::io::pread(fd, &mut **b, cb.offset),
                (Buffer::Write(b), Op::Write) if stream => {
                    let mut done = 0;
                    loop {
                        let rest = &b[done..];
                        match retrying(fd, PollFlags::OUT, || rustix::io::write(fd, rest)) {
                            Ok(n) if n > 0 && done + n < b.len() => done += n,
                            Ok(n) => break Ok(done + n),
                            Err(_) if done > 0 => break Ok(done),
                            Err(e) => break Err(e),
                        }
                    }
                }
                (Buffer::Write(b), Op::Write) => rustix::io::pwrite(fd, b, cb.offset),
                (_, Op::Fsync(SyncMode::Sync)) => rustix::fs::fsync(fd).map(|()| 0),
                (_, Op::Fsync(SyncMode::DataSync)) => rustix::fs::fdatasync(fd).map(|()| 0),
                _ => Err(Errno::INVAL),
            }
        };
        self.finish_slot(i, result);
    }
}
