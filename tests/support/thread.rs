//! A thread of this process that another thread can signal (`pthread_t` is an integer with
//! glibc and a pointer with musl, so it is not `Send` everywhere; this wrapper is).

#![allow(dead_code)]

/// The id of a thread of this process.
#[derive(Clone, Copy)]
pub struct Thread(libc::pthread_t);

// SAFETY: a pthread_t is only an id; every use below is a call that takes the id by value and
// that any thread of the process may make.
unsafe impl Send for Thread {}

impl Thread {
    /// The calling thread.
    pub fn current() -> Thread {
        // SAFETY: pthread_self has no preconditions.
        Thread(unsafe { libc::pthread_self() })
    }

    /// Sends `signal` to the thread, which must still be running.
    pub fn signal(self, signal: i32) {
        // SAFETY: the caller names a live thread of this process.
        unsafe { libc::pthread_kill(self.0, signal) };
    }
}
