//! A futex lock that knows its holder, futex waiting with a deadline, and the monotonic clock.
//!
//! The holder is the thread's `pthread_self()`. Knowing it makes the library safe to enter from
//! a signal handler: a handler that interrupted this library's own thread while it held a lock
//! must not wait for that lock (its holder cannot go on until the handler returns), so
//! [`Lock::lock`] answers `None` to the holder instead of waiting for ever. The async-signal-safe
//! calls (`aio_error`, `aio_return`, `aio_suspend`) then go on without the lock; the others
//! fail with `EAGAIN`.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};

use rustix::thread::futex;
use rustix::time::{clock_gettime, ClockId, Timespec};

/// The calling thread, as `pthread_self()` (never 0).
pub fn thread_id() -> usize {
    // SAFETY: pthread_self has no preconditions and is async-signal-safe in practice (it reads
    // the thread pointer).
    (unsafe { libc::pthread_self() }) as usize
}

/// A mutual-exclusion lock whose word holds its holder's thread id (0: free).
pub struct Lock {
    holder: AtomicUsize,
    /// Bumped by every unlock; waiters sleep on it.
    seq: AtomicU32,
    waiters: AtomicU32,
}

/// The lock, held; dropping it unlocks.
pub struct Guard<'a>(&'a Lock);

impl Lock {
    pub const fn new() -> Lock {
        Lock {
            holder: AtomicUsize::new(0),
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// The lock if it is free now.
    pub fn try_lock(&self) -> Option<Guard<'_>> {
        self.holder
            .compare_exchange(0, thread_id(), SeqCst, SeqCst)
            .ok()
            .map(|_| Guard(self))
    }

    /// Waits for the lock; `None` if the calling thread holds it already (a signal handler that
    /// interrupted it).
    pub fn lock(&self) -> Option<Guard<'_>> {
        let me = thread_id();
        let mut spins = 0;
        loop {
            match self.holder.compare_exchange(0, me, SeqCst, SeqCst) {
                Ok(_) => return Some(Guard(self)),
                Err(holder) if holder == me => return None,
                Err(_) => {}
            }
            if spins < 64 {
                spins += 1;
                core::hint::spin_loop();
                continue;
            }
            let seen = self.seq.load(SeqCst);
            self.waiters.fetch_add(1, SeqCst);
            if self.holder.load(SeqCst) != 0 {
                let _ = futex::wait(&self.seq, futex::Flags::PRIVATE, seen, None);
            }
            self.waiters.fetch_sub(1, SeqCst);
        }
    }

    /// In a forked child: the lock is free, whoever held it in the parent (no thread of the
    /// child does; the state it guarded is discarded with it).
    pub fn reset(&self) {
        self.holder.store(0, SeqCst);
        self.waiters.store(0, SeqCst);
    }

    fn unlock(&self) {
        self.holder.store(0, SeqCst);
        self.seq.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            let _ = futex::wake(&self.seq, futex::Flags::PRIVATE, 1);
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// A point on the monotonic clock (`CLOCK_MONOTONIC`, as POSIX asks of `aio_suspend`), or never.
#[derive(Clone, Copy)]
pub struct Deadline(Option<i128>);

fn now_ns() -> i128 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
}

impl Deadline {
    pub const NEVER: Deadline = Deadline(None);

    /// `timeout` from now (`None`: never).
    pub fn after(timeout: Option<(i64, i64)>) -> Deadline {
        Deadline(timeout.map(|(s, ns)| now_ns() + s as i128 * 1_000_000_000 + ns as i128))
    }

    /// True once the deadline has passed.
    pub fn passed(&self) -> bool {
        self.0.is_some_and(|d| now_ns() >= d)
    }

    /// The time left, capped at `cap_ns` (a wait never passes an unbounded timeout to the
    /// kernel, so that a signal handler always ends it with `EINTR`, SA_RESTART or not).
    pub fn remaining(&self, cap_ns: i128) -> Timespec {
        let left = self.0.map_or(cap_ns, |d| (d - now_ns()).clamp(0, cap_ns));
        Timespec {
            tv_sec: (left / 1_000_000_000) as _,
            tv_nsec: (left % 1_000_000_000) as _,
        }
    }
}

/// Sleeps while `*word == seen`, until woken, `deadline`, or a signal (`Err(EINTR)`). Spurious
/// returns are the caller's to handle.
pub fn wait_on(word: &AtomicU32, seen: u32, deadline: Deadline) -> Result<(), rustix::io::Errno> {
    // A day at most per call: the caller loops.
    let timeout = deadline.remaining(86_400 * 1_000_000_000);
    match futex::wait(word, futex::Flags::PRIVATE, seen, Some(&timeout)) {
        Err(rustix::io::Errno::INTR) => Err(rustix::io::Errno::INTR),
        _ => Ok(()),
    }
}

/// Wakes every thread sleeping on `word`.
pub fn wake_all(word: &AtomicU32) {
    // The kernel reads the count as an int.
    let _ = futex::wake(word, futex::Flags::PRIVATE, i32::MAX as u32);
}
