//! The driving turn: take the queue, submit it with one `io_submit`, cancel abandoned polls,
//! reap the ring, hand the results to the table, then wake futures and drop what abandoned
//! requests kept, outside both locks.

use std::task::Waker;

use linux_aio::raw::{io_event, iocb};
use linux_aio::{Event, SubmitError};
use rustix::io::Errno;

use crate::driver::{lock, try_lock, Shared, Turn};
use crate::table::{State, Table, Trash};

/// The kernel-facing half, only for the driving turn (and teardown).
pub(crate) struct Engine {
    pub(crate) ctx: Option<linux_aio::Context>,
    /// The submitted iocbs, one per slot, at stable addresses (the kernel reads them, and
    /// `io_cancel` finds a request by its iocb's address). Only touched under this lock, and by
    /// the kernel only during our `io_submit` and `io_cancel` calls.
    pub(crate) iocbs: Box<[iocb]>,
    /// Per slot: the request taken for submission is a read or write on a stream (checked
    /// for blocking mode right before `io_submit`).
    stream: Box<[bool]>,
    /// Scratch space, kept so that no turn allocates.
    batch: Vec<u32>,
    ptrs: IocbPtrs,
    cancels: Vec<(u32, u32)>,
    events: Vec<Event>,
    /// Completions found before the table is locked: (user data, result).
    done: Vec<(u64, i64)>,
    wake: Vec<Waker>,
    trash: Vec<Trash>,
    /// The kernel refused a request with `EAGAIN`: submit again after the next completion.
    ring_full: bool,
}

impl Engine {
    pub(crate) fn new(ctx: linux_aio::Context, slots: usize) -> Engine {
        Engine {
            ctx: Some(ctx),
            iocbs: vec![iocb::default(); slots].into_boxed_slice(),
            stream: vec![false; slots].into_boxed_slice(),
            batch: Vec::with_capacity(slots),
            ptrs: IocbPtrs(Vec::with_capacity(slots)),
            cancels: Vec::with_capacity(slots),
            events: vec![Event::default(); EVENTS],
            done: Vec::with_capacity(slots + EVENTS),
            wake: Vec::with_capacity(slots),
            trash: Vec::with_capacity(slots),
            ring_full: false,
        }
    }
}

/// Runs user code (a waker's `wake` or `drop`, a buffer's `Drop`) for the driving turn: a
/// panic there is the user's bug, already reported by the panic hook; it is swallowed here so
/// that the driving loop (a thread, a tokio task, the teardown) survives it and every other
/// request is still driven. The driver's state is consistent (no lock is held).
pub(crate) fn guarded(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
}

/// How many events one reap takes at most (a turn reaps until the ring is empty).
const EVENTS: usize = 256;

/// The pointer array handed to `io_submit`.
struct IocbPtrs(Vec<*mut iocb>);

// SAFETY: the pointers are addresses into `Engine::iocbs`, which belongs to the same Engine;
// they are only ever passed to the kernel, under the engine lock, never dereferenced by Rust.
unsafe impl Send for IocbPtrs {}

impl Shared {
    /// A turn of driving loop `id` (0: `Driver::turn`), whose `waker` is registered to be
    /// woken when a request is queued.
    pub(crate) fn turn(&self, id: u64, waker: &Waker) -> Turn {
        self.turn_inner(Some(id), waker, None)
            .expect("a driving loop's turn waits for the engine")
    }

    /// The teardown's turn: what abandoned requests kept (their buffers) is moved to `keep`
    /// instead of dropped (the teardown frees it only after `io_destroy`); no waker is
    /// registered (the teardown sleeps on the eventfd). None, at once, if another turn holds
    /// the engine (it may be stuck inside `io_submit`: the teardown never waits for it).
    pub(crate) fn try_turn_keeping(&self, keep: &mut Vec<Trash>) -> Option<Turn> {
        self.turn_inner(None, Waker::noop(), Some(keep))
    }

    fn turn_inner(
        &self,
        id: Option<u64>,
        waker: &Waker,
        keep: Option<&mut Vec<Trash>>,
    ) -> Option<Turn> {
        if self.origin.forked() {
            return Some(self.turn_in_child());
        }
        // Cloned before any lock (a waker's clone is user code); kept only if the registered
        // one would not wake the same task.
        let mut registration = id.map(|_| waker.clone());
        let mut engine = match keep {
            Some(_) => try_lock(&self.engine)?,
            None => lock(&self.engine),
        };
        let e = &mut *engine;
        let mut turn = Turn::default();
        let Some(ctx) = e.ctx.as_mut() else {
            turn.finished = true;
            return Some(turn);
        };
        // 1. Take the queue and the cancellations due. Every request counted in `in_flight`
        // here leaves it through `e.done` or a requeue below.
        {
            let mut t = lock(&self.table);
            if let Some(id) = id {
                // The old one (if any) is dropped after the lock.
                if let Some(old) = t.register(id, waker, &mut registration) {
                    registration = Some(old);
                }
            }
            let refuse = t.broken.or(t.closed.then_some(Errno::CANCELED));
            let Table {
                slots,
                pending,
                cancels,
                in_flight,
                closed,
                unsignalled,
                ..
            } = &mut *t;
            if let Some(errno) = refuse {
                // Queued requests never reach the kernel.
                while let Some(i) = pending.pop_front() {
                    let slot = &mut slots[i as usize];
                    slot.state = State::InFlight;
                    // Never submitted: nothing to cancel.
                    slot.cancel_sent = true;
                    *unsignalled += usize::from(slot.quiet);
                    *in_flight += 1;
                    e.done
                        .push((slot.cb.aio_data, -i64::from(errno.raw_os_error())));
                }
            } else if !e.ring_full {
                while let Some(i) = pending.pop_front() {
                    let slot = &mut slots[i as usize];
                    slot.state = State::InFlight;
                    *unsignalled += usize::from(slot.quiet);
                    e.iocbs[i as usize] = slot.cb;
                    e.stream[i as usize] = slot.stream;
                    e.batch.push(i);
                }
                *in_flight += e.batch.len();
            }
            {
                if *closed {
                    // After shutdown every poll in flight is cancelled.
                    cancels.extend(slots.iter().enumerate().filter_map(|(i, s)| {
                        (s.state == State::InFlight && s.cancelable && !s.cancel_sent)
                            .then_some((i as u32, s.generation))
                    }));
                }
                for (i, generation) in cancels.drain(..) {
                    let slot = &mut slots[i as usize];
                    // Only this turn moves a request out of InFlight, so a request validated
                    // here is still the kernel's when io_cancel runs below.
                    if slot.generation == generation
                        && slot.state == State::InFlight
                        && !slot.cancel_sent
                        && !e.batch.contains(&i)
                    {
                        slot.cancel_sent = true;
                        e.cancels.push((i, generation));
                    }
                }
            }
        }
        // 1b. A read or write on a stream whose descriptor was made blocking since the request
        // was made (by any thread or process sharing the open file description) would block
        // this thread inside io_submit: refused with EOPNOTSUPP, as at its creation. One fcntl
        // per such request, right before the submission (a window of microseconds remains, in
        // which another thread or process can still clear O_NONBLOCK: see `File`).
        {
            let (stream, iocbs, done) = (&e.stream, &e.iocbs, &mut e.done);
            e.batch.retain(|&i| {
                let cb = &iocbs[i as usize];
                if !stream[i as usize] {
                    return true;
                }
                // SAFETY: the request's descriptor, kept open by its slot (`Slot::fd`) while the
                // request is in flight: its slot is released only when its completion is
                // processed, after this turn's step 5 at the earliest.
                let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(cb.aio_fildes as i32) };
                if crate::file::blocking(fd) {
                    done.push((cb.aio_data, -i64::from(Errno::OPNOTSUPP.raw_os_error())));
                    return false;
                }
                true
            });
        }
        // 2. Submit the batch: one io_submit, more only if the kernel stops part way.
        e.ptrs.0.clear();
        let base = e.iocbs.as_mut_ptr();
        // Every index in the batch is a slot index, < iocbs.len(): in bounds.
        e.ptrs
            .0
            .extend(e.batch.iter().map(|&i| base.wrapping_add(i as usize)));
        let (mut done, mut refused, mut requeue, mut calls) = (0, 0, 0, 0);
        while done < e.ptrs.0.len() {
            calls += 1;
            // SAFETY: each pointer names an iocb of `e.iocbs` (stable: a boxed slice that lives
            // until teardown), filled by an `Op` with a buffer (and iovec array) that stays
            // allocated, and that Rust does not touch, until the request is reaped: its future
            // holds it, or, once the future is gone, its slot does; a slot is released only
            // when its completion has been processed (or, at teardown, after `io_destroy` has
            // returned). The slot keeps the fd open likewise.
            let r =
                unsafe { ctx.submit_raw(e.ptrs.0.as_mut_ptr().add(done), e.ptrs.0.len() - done) };
            match r {
                Ok(k) => done += k,
                Err(SubmitError { submitted, error }) => {
                    done += submitted;
                    if error == Errno::AGAIN {
                        // Back-pressure: the kernel's ring is full. The rest go back to the
                        // front of the queue, in order, until the next completion.
                        requeue = e.ptrs.0.len() - done;
                        break;
                    }
                    // This request is refused (EBADF, EINVAL, ...): it completes with the
                    // error, and the rest are submitted on.
                    let i = e.batch[done] as usize;
                    e.done
                        .push((e.iocbs[i].aio_data, -i64::from(error.raw_os_error())));
                    refused += 1;
                    done += 1;
                }
            }
        }
        turn.submitted = done - refused;
        // 3. Cancel abandoned polls.
        for &(i, _) in &e.cancels {
            let addr = &e.iocbs[i as usize] as *const iocb;
            if let Ok(linux_aio::Cancel::Canceled(ev)) = ctx.cancel(addr) {
                // Kernels before 3.12 hand the event back here, not through the ring.
                e.done.push((ev.as_raw().data, ev.as_raw().res));
            }
        }
        e.cancels.clear();
        // 4. Reap the ring, after the submission (buffered I/O completed inside it).
        let mut reaped = 0;
        {
            loop {
                match ctx.try_wait(&mut e.events) {
                    Ok(n) => {
                        reaped += n;
                        e.done.extend(e.events[..n].iter().map(|ev| {
                            let raw: &io_event = ev.as_raw();
                            (raw.data, raw.res)
                        }));
                        if n < e.events.len() {
                            break;
                        }
                    }
                    Err(Errno::INTR) => {}
                    // Only a forked child's copy cannot reap, and it does not get here.
                    Err(_) => break,
                }
            }
        }
        // 5. Hand the results over.
        let (mut rewake, mut announce) = (false, false);
        {
            let mut t = lock(&self.table);
            t.submit_calls += calls;
            t.reaped += reaped as u64;
            if requeue > 0 {
                t.ring_full += 1;
                t.in_flight -= requeue;
                for k in (e.batch.len() - requeue..e.batch.len()).rev() {
                    let i = e.batch[k];
                    let slot = &mut t.slots[i as usize];
                    if slot.abandoned {
                        // Its future is gone, and the request never reached the kernel.
                        e.wake.extend(t.release(i, &mut e.trash));
                    } else {
                        slot.state = State::Queued;
                        let quiet = slot.quiet;
                        t.unsignalled -= usize::from(quiet);
                        t.pending.push_front(i);
                    }
                }
                e.ring_full = true;
            }
            for &(user_data, res) in &e.done {
                if t.complete(user_data, res, &mut e.wake, &mut e.trash) {
                    turn.completed += 1;
                    t.in_flight -= 1;
                }
            }
            if reaped > 0 && e.ring_full {
                e.ring_full = false;
                // What the full ring refused goes in the next turn.
                rewake = !t.pending.is_empty();
            }
            turn.finished =
                (t.closed || t.broken.is_some()) && t.pending.is_empty() && t.in_flight == 0;
            if turn.finished && !t.finish_announced {
                t.finish_announced = true;
                announce = true;
            }
            turn.unsignalled = t.unsignalled;
            if t.unsignalled > 0 {
                // A filesystem the driver took for synchronous is not: from now on every
                // request is announced by the eventfd.
                t.always_signal = true;
            }
        }
        e.done.clear();
        e.batch.clear();
        // 6. Wake the futures, then drop what abandoned requests kept: user code (a waker that
        // polls inline, a buffer's Drop), so outside both locks; it may even start a turn. The
        // vectors go back afterwards, keeping their capacity, so no turn allocates.
        let (mut wake, mut trash) = (std::mem::take(&mut e.wake), std::mem::take(&mut e.trash));
        drop(engine);
        for w in wake.drain(..) {
            guarded(|| w.wake());
        }
        if rewake {
            guarded(|| waker.wake_by_ref());
        }
        if announce {
            // Another driving loop (the teardown's, sleeping on the eventfd) may be waiting
            // for what this turn reaped last: wake it, so it sees the driver finished.
            let _ = rustix::io::write(&self.efd, &1u64.to_ne_bytes());
        }
        guarded(|| drop(registration));
        // The teardown never waits for the engine (another turn may be stuck in io_submit):
        // without it, the vectors' capacity is lost, nothing else.
        let e = match keep {
            Some(keep) => {
                keep.append(&mut trash);
                try_lock(&self.engine)
            }
            None => {
                for t in trash.drain(..) {
                    guarded(|| drop(t));
                }
                Some(lock(&self.engine))
            }
        };
        if let Some(mut e) = e {
            if e.wake.capacity() < wake.capacity() {
                e.wake = wake;
            }
            if e.trash.capacity() < trash.capacity() {
                e.trash = trash;
            }
        }
        Some(turn)
    }

    /// A turn in a forked child's copy of the driver: the kernel context, its ring and the
    /// requests in flight are the parent's, and the engine's lock may have been held by a
    /// thread of the parent at the fork (never released here). So no lock is waited for: the
    /// table is marked broken if its lock can be had, and the futures of inherited requests
    /// are woken (their next poll fails with `EINVAL`, without the lock). The loop ends.
    fn turn_in_child(&self) -> Turn {
        let mut wake = Vec::new();
        if let Ok(mut t) = self.table.try_lock() {
            t.broken.get_or_insert(Errno::INVAL);
            wake.extend(t.slots.iter_mut().filter_map(|s| s.waker.take()));
        }
        for w in wake {
            guarded(|| w.wake());
        }
        Turn {
            finished: true,
            ..Turn::default()
        }
    }
}
