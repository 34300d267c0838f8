//! Synchronous execution, where the kernel has no AIO (`io_setup` answers `ENOSYS`:
//! qemu-user, `CONFIG_AIO=n`, a seccomp filter; or `LINUX_AIO_POSIX_FORCE_SYNC=1` in the
//! environment when the library first needs a context, for testing): each request runs in the
//! calling thread when it is queued, as `pread`, `pwrite`, `fsync` or `fdatasync`, and is
//! complete (and notified) when `aio_read` returns. A stream request behaves as in the
//! asynchronous mode, only blocking the call: a read waits for data and takes what is there, a
//! write goes on until all of it is written (or an error stops it, and then completes with the
//! count written), whether or not the descriptor is `O_NONBLOCK`. `aio_cancel` finds nothing to
//! cancel (`AIO_ALLDONE`, or `AIO_NOTCANCELED` for a request another thread is executing).

use core::ffi::{c_int, c_void};

use rustix::io::Errno;

use crate::engine::{Kind, Op};

fn errno() -> Errno {
    // SAFETY: the calling thread's errno.
    Errno::from_raw_os_error(unsafe { *libc::__errno_location() })
}

fn check(ret: isize) -> Result<usize, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as usize)
    }
}

/// Blocks until `fd` is ready for `events`; a signal does not end the wait.
fn wait_ready(fd: c_int, events: i16) -> Result<(), Errno> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one pollfd on the stack.
        match unsafe { libc::poll(&mut pfd, 1, -1) } {
            r if r >= 0 => return Ok(()),
            _ if errno() == Errno::INTR => {}
            _ => return Err(errno()),
        }
    }
}

/// `op` on a stream, retried after `EINTR`, and after `EAGAIN` (an `O_NONBLOCK` descriptor) once
/// `fd` is ready for `events`.
fn retrying(fd: c_int, events: i16, mut op: impl FnMut() -> isize) -> Result<usize, Errno> {
    loop {
        match check(op()) {
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => wait_ready(fd, events)?,
            other => return other,
        }
    }
}

/// Performs one request now. The buffer is the caller's (POSIX's contract: valid until the
/// request completes); a bad one gets `EFAULT` from the kernel.
pub fn run(
    op: Op,
    kind: Kind,
    fd: c_int,
    buf: usize,
    nbytes: usize,
    offset: i64,
) -> Result<usize, Errno> {
    let p = buf as *mut c_void;
    let stream = kind != Kind::File;
    // SAFETY (every call below): plain system calls on the caller's descriptor and buffer.
    match op {
        Op::Read if stream => retrying(fd, libc::POLLIN, || unsafe { libc::read(fd, p, nbytes) }),
        Op::Read => check(unsafe { pread(fd, p, nbytes, offset) }),
        Op::Write if stream => {
            let mut done = 0;
            loop {
                let rest = nbytes - done;
                // SAFETY: within the caller's buffer.
                let at = unsafe { p.cast::<u8>().add(done) }.cast::<c_void>();
                match retrying(fd, libc::POLLOUT, || unsafe { libc::write(fd, at, rest) }) {
                    Ok(n) if n > 0 && done + n < nbytes => done += n,
                    Ok(n) => return Ok(done + n),
                    Err(_) if done > 0 => return Ok(done),
                    Err(e) => return Err(e),
                }
            }
        }
        Op::Write => check(unsafe { pwrite(fd, p, nbytes, offset) }),
        Op::Fsync => check(unsafe { libc::fsync(fd) } as isize),
        Op::Fdsync => check(unsafe { libc::fdatasync(fd) } as isize),
    }
}

/// `pread` with a 64-bit offset.
unsafe fn pread(fd: c_int, p: *mut c_void, n: usize, offset: i64) -> isize {
    #[cfg(target_env = "gnu")]
    // SAFETY: forwarded.
    return unsafe { libc::pread64(fd, p, n, offset) };
    #[cfg(not(target_env = "gnu"))]
    // SAFETY: forwarded (off_t is 64-bit outside glibc).
    return unsafe { libc::pread(fd, p, n, offset as libc::off_t) };
}

/// `pwrite` with a 64-bit offset.
unsafe fn pwrite(fd: c_int, p: *const c_void, n: usize, offset: i64) -> isize {
    #[cfg(target_env = "gnu")]
    // SAFETY: forwarded.
    return unsafe { libc::pwrite64(fd, p, n, offset) };
    #[cfg(not(target_env = "gnu"))]
    // SAFETY: forwarded (off_t is 64-bit outside glibc).
    return unsafe { libc::pwrite(fd, p, n, offset as libc::off_t) };
}
