//! A driving thread, for any executor.

use std::sync::Arc;
use std::task::{Wake, Waker};

use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;

use crate::driver::{drain_eventfd, Backoff, Driver, Loop};

/// Wakes the driving thread: adds 1 to the eventfd it waits on (the kernel's completions do
/// the same).
struct Kick(Arc<OwnedFd>);

impl Wake for Kick {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let _ = rustix::io::write(&*self.0, &1u64.to_ne_bytes());
    }
}

impl Driver {
    /// Drives the driver from a thread of its own (named `linux-aio-driver`), for executors
    /// without a reactor this crate knows (`futures::executor`, smol, ...). The thread sleeps in
    /// `poll(2)` on the eventfd, which completions signal and new requests kick (one `write` per
    /// batch); it ends when the driver is gone, or shut down with nothing in flight.
    pub fn spawn_thread(&self) -> std::io::Result<std::thread::JoinHandle<()>> {
        let efd = Arc::new(self.shared().efd.try_clone()?);
        let waker = Waker::from(Arc::new(Kick(efd.clone())));
        let this = Loop::new(self.shared());
        let origin = self.shared().origin;
        let mut backoff = Backoff::default();
        std::thread::Builder::new()
            .name("linux-aio-driver".into())
            .spawn(move || loop {
                let Some(shared) = this.shared.upgrade() else {
                    return;
                };
                let turn = shared.turn(this.id, &waker);
                drop(shared);
                if turn.finished {
                    return;
                }
                let mut fds = [PollFd::new(&*efd, PollFlags::IN)];
                // Requests the eventfd will not announce: look again after a sleep that grows
                // (from 50 us to 4 ms) while they last, woken early by the eventfd.
                let timeout = backoff.timeout(turn.unsignalled > 0);
                match rustix::event::poll(&mut fds, timeout.as_ref()) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {
                        drain_eventfd(rustix::fd::AsFd::as_fd(&*efd), &origin)
                    }
                    Err(_) => return,
                }
            })
    }
}
