//! Synchronous execution, where the kernel has no AIO (`ENOSYS`): each request runs when it
//! is queued, as `read`/`pread`/`write`/`pwrite`/`fsync`/`fdatasync`.

use rustix::io::Errno;

use super::{Aio, Op, SyncMode};
use crate::request::Buffer;

impl<'a, 'scope, 'env, const N: usize> Aio<'a, 'scope, 'env, N> {
    /// Synchronous mode: performs the operation now.
    pub(super) fn run_synchronously(&self, i: usize) {
        let result = {
            let mut inner = self.inner.borrow_mut();
            let stream = inner.slots[i].stream;
            let Some(cb) = inner.slots[i].cb.as_mut() else {
                return;
            };
            match (&mut cb.buffer, cb.op) {
                (Buffer::Read(b), Op::Read) if stream => rustix::io::read(cb.fd, &mut **b),
                (Buffer::Read(b), Op::Read) => rustix::io::pread(cb.fd, &mut **b, cb.offset),
                (Buffer::Write(b), Op::Write) if stream => rustix::io::write(cb.fd, b),
                (Buffer::Write(b), Op::Write) => rustix::io::pwrite(cb.fd, b, cb.offset),
                (_, Op::Fsync(SyncMode::Sync)) => rustix::fs::fsync(cb.fd).map(|()| 0),
                (_, Op::Fsync(SyncMode::DataSync)) => rustix::fs::fdatasync(cb.fd).map(|()| 0),
                _ => Err(Errno::INVAL),
            }
        };
        self.finish_slot(i, result);
    }
}
