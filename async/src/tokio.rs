//! Driving from a tokio task: the eventfd registered with `tokio::io::unix::AsyncFd`.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use rustix::fd::{AsFd, OwnedFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::driver::{drain_eventfd, Driver, Shared};

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
        let dup = self.0.efd.try_clone()?;
        // SAFETY: `dup` is an open descriptor that the AsyncFd owns: it stays open, on the
        // same eventfd, until the AsyncFd drops it, and `as_raw_fd` always returns it.
        let efd = unsafe { AsyncFd::register_with_interest(dup, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        let weak = Arc::downgrade(&self.0);
        Ok(std::future::poll_fn(move |cx| drive(&weak, &efd, cx)))
    }
}

fn drive(weak: &Weak<Shared>, efd: &AsyncFd<OwnedFd>, cx: &mut Context<'_>) -> Poll<()> {
    for _ in 0..TURNS_PER_POLL {
        let Some(shared) = weak.upgrade() else {
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
        let turn = Driver(shared).turn(cx.waker());
        if turn.finished {
            return Poll::Ready(());
        }
        if turn.unsignalled > 0 {
            // Requests the eventfd will not announce are in flight: look again soon.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if !signalled {
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
