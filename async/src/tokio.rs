//! Driving from a tokio task: the eventfd registered with `tokio::io::unix::AsyncFd`.

use std::future::Future;

use std::task::{Context, Poll};

use rustix::fd::{AsFd, OwnedFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::driver::{drain_eventfd, Backoff, Driver, Loop};

/// Turns one poll of the driving task may take before it yields to the other tasks.
const TURNS_PER_POLL: usize = 8;

impl Driver {
    /// Spawns the driving task on the current tokio runtime (`tokio::spawn`; it must be called
    /// from inside one). Any runtime flavour; futures may run on any of its threads. The task
    /// ends when the driver is gone, or shut down with nothing in flight.
    pub fn spawn_tokio(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let drive = self.drive_tokio()?;
        Ok(tokio::spawn(drive))
    }

    /// The driving task, for spawning yourself (`tokio::task::spawn_local`, a `LocalSet`...).
    /// Registers the eventfd with the current runtime's reactor: call it inside the runtime
    /// that will run the task, with its I/O driver enabled (`enable_io`, or `enable_all`).
    pub fn drive_tokio(&self) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
        // tokio would panic outside a runtime: say so instead.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(std::io::Error::other(
                "Driver::drive_tokio: not inside a tokio runtime",
            ));
        }
        // A duplicate of the eventfd, owned by the registration, so it never outlives it.
        let dup = self.shared().efd.try_clone()?;
        // tokio panics when the runtime has no I/O driver (built without `enable_io`), and
        // offers no way to ask first: catch it and say so.
        let registered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: `dup` is an open descriptor that the AsyncFd owns: it stays open, on the
            // same eventfd, until the AsyncFd drops it, and `as_raw_fd` always returns it.
            unsafe { AsyncFd::register_with_interest(dup, Interest::READABLE) }
        }));
        let efd = match registered {
            Ok(r) => r.map_err(|e| e.into_parts().1)?,
            Err(_) => {
                return Err(std::io::Error::other(
                    "Driver::drive_tokio: the tokio runtime has no I/O driver (enable_io)",
                ))
            }
        };
        // Its waker leaves the table when the task ends, or when its runtime drops it.
        let this = Loop::new(self.shared());
        let mut backoff = Backoff::default();
        Ok(std::future::poll_fn(move |cx| {
            drive(&this, &efd, &mut backoff, cx)
        }))
    }
}

fn drive(
    this: &Loop,
    efd: &AsyncFd<OwnedFd>,
    backoff: &mut Backoff,
    cx: &mut Context<'_>,
) -> Poll<()> {
    for _ in 0..TURNS_PER_POLL {
        let Some(shared) = this.shared.upgrade() else {
            return Poll::Ready(());
        };
        // Reset the eventfd before reaping, so a completion after the reap signals it anew.
        let signalled = match efd.poll_read_ready(cx) {
            Poll::Ready(Ok(mut ready)) => {
                drain_eventfd(efd.get_ref().as_fd(), &shared.origin);
                ready.clear_ready();
                true
            }
            // The reactor is gone (the runtime is shutting down).
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Pending => false,
        };
        let turn = shared.turn(this.id, cx.waker());
        drop(shared);
        if turn.finished {
            return Poll::Ready(());
        }
        if !signalled {
            if let Some(delay) = backoff.next(turn.unsignalled > 0) {
                // Requests the eventfd will not announce are in flight: look again after a
                // sleep that grows (50 us to 4 ms) while they last, never in a busy loop. The
                // eventfd and the queue still wake the task early.
                let waker = cx.waker().clone();
                tokio::task::spawn_blocking(move || {
                    std::thread::sleep(delay);
                    waker.wake();
                });
            }
            // Both wake-ups are registered: the eventfd's readiness (polled Pending above),
            // and the waker a future wakes when it queues a request (given to the turn).
            // Completions of what this turn submitted come through the eventfd, or were
            // reaped by the turn itself (buffered I/O).
            return Poll::Pending;
        }
        // The eventfd was ready and has been reset: poll it again, to register for the next.
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}
