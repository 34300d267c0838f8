//! The driver: one kernel context, its eventfd, and the completion table.
//!
//! Futures never make system calls. A future takes a slot of the table, writes its request
//! there and joins the queue (`pending`); the driving task (tokio, a thread, or any code calling
//! [`Driver::turn`]) takes the whole queue, submits it with one `io_submit`, then reaps the ring
//! and wakes the futures whose requests completed. Every request is submitted with
//! `IOCB_FLAG_RESFD`, so the eventfd becomes readable whenever a completion is waiting.
//!
//! Two locks, always taken in this order: `engine` (the context, the submission array, scratch
//! space: only the driving turn and teardown take it) and `table` (the slots: futures take it for
//! a few instructions on each poll). No system call and no user code (wakers aside) runs under
//! the table lock; user code (a dropped buffer's `Drop`) runs under neither.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use linux_aio::raw::{self, io_event, iocb};
use linux_aio::{Event, SubmitError};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

/// An open driver: clone it freely (every clone is the same driver), hand it to
/// [`File::new`](crate::File::new), and drive it with [`Driver::spawn_tokio`] (feature `tokio`),
/// [`Driver::spawn_thread`] (any executor), or your own loop around [`Driver::turn`].
///
/// The kernel context lives until the last clone, [`File`](crate::File) and future is gone; it
/// is then destroyed on a thread of its own (`io_destroy` waits for whatever is still in flight,
/// ~35 ms even when idle), never on the thread that dropped it. Buffers of futures dropped in
/// flight are freed there too, after `io_destroy` has returned.
#[derive(Clone)]
pub struct Driver(pub(crate) Arc<Shared>);

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.stats();
        f.debug_struct("Driver")
            .field("slots", &self.0.slots)
            .field("queued", &s.queued)
            .field("in_kernel", &s.in_kernel)
            .field("closed", &s.closed)
            .finish()
    }
}

/// What one [`Driver::turn`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turn {
    /// Requests handed to the kernel (in one `io_submit`, more only after a partial refusal).
    pub submitted: usize,
    /// Requests completed: reaped from the ring, refused at submission, or cancelled while
    /// queued.
    pub completed: usize,
    /// The driver is shut down and nothing is queued or in flight: the driving loop can end.
    pub finished: bool,
    /// Requests in flight that the eventfd will not announce: buffered reads and writes, which
    /// go without `IOCB_FLAG_RESFD` on filesystems known to perform them inside `io_submit`
    /// (see [`File`](crate::File)). Normally 0 after a turn; if not, the filesystem completed
    /// one later after all, and the driving loop must turn again soon rather than wait for the
    /// eventfd (the driver then signals every later request).
    pub unsignalled: usize,
}

/// A snapshot of the driver's table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests waiting in the queue for the next turn.
    pub queued: usize,
    /// Requests the kernel holds (submitted, not yet reaped), including those whose future has
    /// been dropped.
    pub in_kernel: usize,
    /// Futures waiting for a free slot (back-pressure).
    pub waiting_for_slot: usize,
    /// Completions reaped since the driver was created.
    pub reaped: u64,
    /// `io_submit` calls made since the driver was created.
    pub submit_calls: u64,
    /// Times the kernel refused a request with `EAGAIN` (its ring full): back-pressure, retried
    /// after the next completion.
    pub ring_full: u64,
    /// [`Driver::shutdown`] was called.
    pub closed: bool,
}

/// Where a slot's request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Free,
    /// Prepared by its future, in `pending`.
    Queued,
    /// Taken by the driver for submission, or in the kernel.
    InFlight,
    /// Completed with this result (`res` of the event), for the future to take.
    Done(i64),
}

/// A `struct iovec`, without raw pointers (so the table is `Send`).
#[doc(hidden)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Iovec {
    pub base: usize,
    pub len: usize,
}

/// Something a completed or abandoned slot gives up, dropped outside every lock.
pub(crate) type Trash = Box<dyn Send>;

pub(crate) struct Slot {
    pub generation: u32,
    pub state: State,
    /// The request, as its future prepared it (copied into the submission array by the driver).
    pub cb: iocb,
    pub waker: Option<Waker>,
    /// The future was dropped while the kernel held the request: `orphan` keeps its buffer.
    pub abandoned: bool,
    pub orphan: Option<Trash>,
    /// The request's file, kept open until the request completes.
    pub fd: Option<Arc<OwnedFd>>,
    /// The iovec array of a vectored request (its capacity is kept from one request to the next).
    pub iov: Vec<Iovec>,
    pub cancelable: bool,
    /// `io_cancel` was called for this request.
    pub cancel_sent: bool,
    /// Submitted without `IOCB_FLAG_RESFD` (see [`Turn::unsignalled`]).
    pub quiet: bool,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            generation: 0,
            state: State::Free,
            cb: iocb::default(),
            waker: None,
            abandoned: false,
            orphan: None,
            fd: None,
            iov: Vec::new(),
            cancelable: false,
            cancel_sent: false,
            quiet: false,
        }
    }
}

pub(crate) struct Table {
    pub slots: Box<[Slot]>,
    pub free: Vec<u32>,
    /// Prepared requests, in order, waiting for the driver.
    pub pending: VecDeque<u32>,
    /// Abandoned requests to cancel (polls), as (slot, generation).
    pub cancels: Vec<(u32, u32)>,
    /// Futures waiting for a free slot, oldest first; `None` for one that has gone. The entry at
    /// index `i` has waiter id `room_base + i`.
    pub room: VecDeque<Option<Waker>>,
    pub room_base: u64,
    /// Woken when the queue becomes non-empty or a cancellation is requested: the driving task.
    pub flush: Option<Waker>,
    pub in_flight: usize,
    pub closed: bool,
    /// Every request fails with this (a forked child's copy of the driver: `EINVAL`).
    pub broken: Option<Errno>,
    pub reaped: u64,
    pub submit_calls: u64,
    pub ring_full: u64,
    /// In-flight requests submitted without `IOCB_FLAG_RESFD`.
    pub unsignalled: usize,
    /// A request without `IOCB_FLAG_RESFD` outlived its `io_submit`: signal every request.
    pub always_signal: bool,
}

impl Table {
    /// Marks slot `i` free for the next request, giving up what it kept, and lets one future
    /// waiting for a slot try again. Returns the waker to wake.
    pub fn release(&mut self, i: u32, trash: &mut impl Extend<Trash>) -> Option<Waker> {
        let slot = &mut self.slots[i as usize];
        if std::mem::take(&mut slot.quiet) && slot.state == State::InFlight {
            self.unsignalled -= 1;
        }
        slot.state = State::Free;
        slot.generation = slot.generation.wrapping_add(1);
        slot.waker = None;
        slot.abandoned = false;
        slot.cancelable = false;
        slot.cancel_sent = false;
        if let Some(orphan) = slot.orphan.take() {
            trash.extend(Some(orphan));
        }
        if let Some(fd) = slot.fd.take() {
            trash.extend(Some(Box::new(fd) as Trash));
        }
        self.free.push(i);
        self.next_room_waiter()
    }

    /// The oldest future still waiting for a slot, taken off the queue.
    pub fn next_room_waiter(&mut self) -> Option<Waker> {
        while let Some(entry) = self.room.pop_front() {
            self.room_base += 1;
            if entry.is_some() {
                return entry;
            }
        }
        None
    }

    /// A completion (or a refusal) for the request with `user_data`: the future gets the
    /// result, or, if it has gone, the slot is released. Stale or foreign user data is ignored.
    fn complete(
        &mut self,
        user_data: u64,
        res: i64,
        wake: &mut Vec<Waker>,
        trash: &mut Vec<Trash>,
    ) -> bool {
        let (i, generation) = ((user_data & 0xffff_ffff) as u32, (user_data >> 32) as u32);
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return false;
        };
        if slot.generation != generation || slot.state != State::InFlight {
            return false;
        }
        if slot.abandoned {
            wake.extend(self.release(i, trash));
        } else {
            if std::mem::take(&mut slot.quiet) {
                self.unsignalled -= 1;
            }
            slot.state = State::Done(res);
            wake.extend(slot.waker.take());
        }
        true
    }
}

/// The kernel-facing half, only for the driving turn (and teardown).
struct Engine {
    ctx: Option<linux_aio::Context>,
    /// The submitted iocbs, one per slot, at stable addresses (the kernel reads them, and
    /// `io_cancel` finds a request by its iocb's address). Only touched under this lock, and by
    /// the kernel only during our `io_submit` and `io_cancel` calls.
    iocbs: Box<[iocb]>,
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

/// The pointer array handed to `io_submit`.
struct IocbPtrs(Vec<*mut iocb>);

// SAFETY: the pointers are addresses into `Engine::iocbs`, which belongs to the same Engine;
// they are only ever passed to the kernel, under the engine lock, never dereferenced by Rust.
unsafe impl Send for IocbPtrs {}

/// Identifies the process that created the driver, so that a forked child's copy refuses work
/// instead of touching the parent's requests.
#[derive(Clone, Copy)]
struct Origin {
    token: Option<std::num::NonZeroU64>,
    pid: rustix::process::Pid,
}

impl Origin {
    fn current() -> Origin {
        Origin {
            token: linux_aio::ring::process_token(),
            pid: rustix::process::getpid(),
        }
    }

    fn forked(&self) -> bool {
        match self.token {
            // One load (a page wiped on fork), as the core crate's own check.
            Some(token) => linux_aio::ring::process_token() != Some(token),
            None => rustix::process::getpid() != self.pid,
        }
    }
}

pub(crate) struct Shared {
    engine: Mutex<Engine>,
    pub table: Mutex<Table>,
    pub efd: OwnedFd,
    pub slots: usize,
    origin: Origin,
}

/// Locks `m`, also after a panic elsewhere (nothing here leaves the data inconsistent across a
/// panic: user code runs outside the locks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ring capacity the kernel is asked for by [`Driver::new`]'s callers who have no better idea.
pub const DEFAULT_CAPACITY: u32 = 256;

/// The most table slots a driver may have (a slot takes about 200 bytes, allocated up front).
pub const MAX_SLOTS: usize = 1 << 20;

/// How many events one reap takes at most (a turn reaps until the ring is empty).
const EVENTS: usize = 256;

/// Options for a [`Driver`].
#[derive(Debug, Clone, Copy)]
pub struct Builder {
    capacity: u32,
    slots: Option<usize>,
}

impl Builder {
    /// The ring capacity (`io_setup`'s argument): requests in flight at once.
    pub fn capacity(mut self, capacity: u32) -> Builder {
        self.capacity = capacity;
        self
    }

    /// Table slots (futures whose request is queued or in flight at once); by default the
    /// capacity. More slots than the kernel's ring has room for is allowed: the kernel then
    /// refuses some submissions with `EAGAIN`, which the driver treats as back-pressure (it
    /// submits them again after the next completion).
    pub fn slots(mut self, slots: usize) -> Builder {
        self.slots = Some(slots);
        self
    }

    /// `io_setup`, the eventfd and the table. Errors: `EINVAL` (capacity or slots 0, or more
    /// than [`MAX_SLOTS`] slots), `EAGAIN` (beyond `fs.aio-max-nr`), `ENOSYS` (no kernel AIO).
    pub fn build(self) -> std::io::Result<Driver> {
        let slots = self.slots.unwrap_or(self.capacity as usize);
        if slots == 0 || slots > MAX_SLOTS {
            return Err(Errno::INVAL.into());
        }
        let ctx = linux_aio::Context::new(self.capacity)?;
        let efd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        let table = Table {
            slots: (0..slots).map(|_| Slot::new()).collect(),
            free: (0..slots as u32).rev().collect(),
            pending: VecDeque::with_capacity(slots),
            cancels: Vec::with_capacity(slots),
            room: VecDeque::new(),
            room_base: 0,
            flush: None,
            in_flight: 0,
            closed: false,
            broken: None,
            reaped: 0,
            submit_calls: 0,
            ring_full: 0,
            unsignalled: 0,
            always_signal: false,
        };
        let engine = Engine {
            ctx: Some(ctx),
            iocbs: vec![iocb::default(); slots].into_boxed_slice(),
            batch: Vec::with_capacity(slots),
            ptrs: IocbPtrs(Vec::with_capacity(slots)),
            cancels: Vec::with_capacity(slots),
            events: vec![Event::default(); EVENTS],
            done: Vec::with_capacity(slots + EVENTS),
            wake: Vec::with_capacity(slots),
            trash: Vec::with_capacity(slots),
            ring_full: false,
        };
        Ok(Driver(Arc::new(Shared {
            engine: Mutex::new(engine),
            table: Mutex::new(table),
            efd,
            slots,
            origin: Origin::current(),
        })))
    }
}

impl Driver {
    /// A driver whose ring holds `capacity` requests in flight (and as many table slots).
    /// See [`Builder::build`] for the errors.
    pub fn new(capacity: u32) -> std::io::Result<Driver> {
        Driver::builder().capacity(capacity).build()
    }

    /// Options: ring capacity and table slots.
    pub fn builder() -> Builder {
        Builder {
            capacity: DEFAULT_CAPACITY,
            slots: None,
        }
    }

    /// The eventfd the kernel signals on every completion, for a driving loop of your own:
    /// wait until it is readable (or the waker given to [`Driver::turn`] is woken), read it
    /// (non-blocking; it is opened `O_NONBLOCK`), then call [`Driver::turn`].
    pub fn eventfd(&self) -> BorrowedFd<'_> {
        self.0.efd.as_fd()
    }

    /// A snapshot of the table.
    pub fn stats(&self) -> Stats {
        let t = lock(&self.0.table);
        Stats {
            queued: t.pending.len(),
            in_kernel: t.in_flight,
            waiting_for_slot: t.room.iter().filter(|w| w.is_some()).count(),
            reaped: t.reaped,
            submit_calls: t.submit_calls,
            ring_full: t.ring_full,
            closed: t.closed,
        }
    }

    /// Stops taking requests: new ones, and queued ones not yet submitted, complete with
    /// `ECANCELED`; polls in flight are cancelled (`ECANCELED` too); reads, writes and syncs the
    /// kernel holds complete normally (the kernel cannot cancel them). Once nothing is in
    /// flight the driving task or thread ends. Idempotent.
    pub fn shutdown(&self) {
        let flush = {
            let mut t = lock(&self.0.table);
            t.closed = true;
            t.flush.clone()
        };
        if let Some(w) = flush {
            w.wake();
        }
    }

    /// One turn of the driving loop: registers `waker` to be woken when a future queues a
    /// request (or asks for a cancellation), submits the whole queue with one `io_submit`,
    /// cancels abandoned polls, reaps every completion waiting in the ring (no system call) and
    /// wakes their futures. Never blocks (buffered file I/O aside, which the kernel performs
    /// inside `io_submit`). Safe to call from several threads; turns run one at a time.
    pub fn turn(&self, waker: &Waker) -> Turn {
        self.0.turn(waker)
    }

    /// True if `self` and `other` are clones of the same driver.
    pub fn same_driver(&self, other: &Driver) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Reads the eventfd to reset it (it is non-blocking: `EAGAIN` when already 0).
pub(crate) fn drain_eventfd(fd: BorrowedFd<'_>) {
    let mut count = [0u8; 8];
    let _ = rustix::io::read(fd, &mut count);
}

impl Shared {
    /// True in a forked child's copy of the driver.
    pub fn forked(&self) -> bool {
        self.origin.forked()
    }

    /// Prepares the iocb fields every request shares; `signal`: with `IOCB_FLAG_RESFD`.
    pub fn stamp(&self, cb: &mut iocb, slot: u32, generation: u32, fd: &OwnedFd, signal: bool) {
        cb.aio_data = (u64::from(generation) << 32) | u64::from(slot);
        cb.aio_fildes = fd.as_raw_fd() as u32;
        if signal {
            cb.aio_flags |= raw::IOCB_FLAG_RESFD;
            cb.aio_resfd = self.efd.as_raw_fd() as u32;
        }
    }

    fn turn(&self, waker: &Waker) -> Turn {
        let mut engine = lock(&self.engine);
        let e = &mut *engine;
        let mut turn = Turn::default();
        let Some(ctx) = e.ctx.as_mut() else {
            turn.finished = true;
            return turn;
        };
        let forked = self.origin.forked();
        // 1. Take the queue and the cancellations due. Every request counted in `in_flight`
        // here leaves it through `e.done` or a requeue below.
        {
            let mut t = lock(&self.table);
            if !t.flush.as_ref().is_some_and(|w| w.will_wake(waker)) {
                t.flush = Some(waker.clone());
            }
            if forked && t.broken.is_none() {
                // A forked child's copy: the kernel context is the parent's. Nothing submitted
                // here would ever complete here, and the requests the parent had in flight
                // write into the parent's memory, not into this copy's buffers: fail them all.
                t.broken = Some(Errno::INVAL);
                let inval = -i64::from(Errno::INVAL.raw_os_error());
                e.done.extend(
                    t.slots
                        .iter()
                        .filter(|s| s.state == State::InFlight)
                        .map(|s| (s.cb.aio_data, inval)),
                );
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
                    e.batch.push(i);
                }
                *in_flight += e.batch.len();
            }
            if !forked {
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
        if !forked {
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
                if !t.pending.is_empty() {
                    // What the full ring refused goes in the next turn.
                    e.wake.push(waker.clone());
                }
            }
            turn.finished =
                (t.closed || t.broken.is_some()) && t.pending.is_empty() && t.in_flight == 0;
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
            w.wake();
        }
        trash.clear();
        let mut e = lock(&self.engine);
        if e.wake.capacity() < wake.capacity() {
            e.wake = wake;
        }
        if e.trash.capacity() < trash.capacity() {
            e.trash = trash;
        }
        turn
    }
}

/// What a dropped driver leaves to its teardown thread, in the order it must go: the context
/// (`io_destroy` waits for every request still in flight), then the slots (buffers of
/// abandoned requests, their fds and iovec arrays) and the iocbs.
struct Teardown {
    ctx: Option<linux_aio::Context>,
    _slots: Box<[Slot]>,
    _iocbs: Box<[iocb]>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        // Before the fields (which drop after this, in declaration order).
        drop(self.ctx.take());
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Nothing else refers to the driver: no clone, file or future, no turn in progress.
        let engine = self
            .engine
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let table = self.table.get_mut().unwrap_or_else(PoisonError::into_inner);
        let teardown = Teardown {
            ctx: engine.ctx.take(),
            _slots: std::mem::take(&mut table.slots),
            _iocbs: std::mem::take(&mut engine.iocbs),
        };
        // Never io_destroy (tens of milliseconds) on the caller's thread, which may be an
        // executor's. If no thread can be had, the failed spawn drops `teardown` here, which
        // still destroys the context before freeing anything.
        let _ = std::thread::Builder::new()
            .name("linux-aio-destroy".into())
            .spawn(move || drop(teardown));
        // A driving task still waiting ends when it sees the driver gone.
        if let Some(w) = table.flush.take() {
            w.wake();
        }
    }
}
