//! The driver: one kernel context, its eventfd, and the completion table.
//!
//! Futures never make system calls. A future takes a slot of the table, writes its request
//! there and joins the queue (`pending`); the driving task (tokio, a thread, or any code calling
//! [`Driver::turn`]) takes the whole queue, submits it with one `io_submit`, then reaps the ring
//! and wakes the futures whose requests completed (`turn.rs`). Requests the kernel may complete
//! later are submitted with `IOCB_FLAG_RESFD`, so the eventfd becomes readable whenever such a
//! completion is waiting.
//!
//! Two locks, always taken in this order: `engine` (the context, the submission array, scratch
//! space: only the driving turn and teardown take it; `turn.rs`) and `table` (the slots:
//! futures take it for a few instructions on each poll; `table.rs`). No system call runs under
//! the table lock, and no user code (a waker, a dropped buffer's `Drop`) under either.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::Waker;
use std::time::{Duration, Instant};

use linux_aio::raw::{self, iocb};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use crate::table::{Flush, Queue, Slot, Table, Trash};
use crate::turn::Engine;

/// An open driver: clone it freely (every clone is the same driver), hand it to
/// [`File::new`](crate::File::new), and drive it with [`Driver::spawn_tokio`] (feature `tokio`),
/// [`Driver::spawn_thread`] (any executor), or your own loop around [`Driver::turn`].
///
/// The kernel context lives until the last clone, [`File`](crate::File) and future is gone; it
/// is then destroyed on a thread of its own (`io_destroy` waits for whatever is still in flight,
/// ~35 ms even when idle), never on the thread that dropped it. Buffers of futures dropped in
/// flight are freed there too, after `io_destroy` has returned.
///
/// Dropping the last `Driver` and `File` handle shuts the driver down ([`Driver::shutdown`]):
/// queued requests complete with `ECANCELED`, polls are cancelled, reads, writes and syncs the
/// kernel holds run to their end (driven by a teardown thread if no driving task is left), and
/// then the context is destroyed. Futures still alive then (even leaked ones) keep only the
/// table, never the kernel context.
#[derive(Clone)]
pub struct Driver(pub(crate) Arc<Owner>);

/// What the user's handles (`Driver` clones and `File`s) share: when the last goes, the driver
/// shuts down and its context is destroyed once nothing is in flight.
pub(crate) struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.shared.forked() {
            // A forked child's copy: its table's locks may have been held at the fork, and it
            // has nothing in the kernel. Leave it.
            return;
        }
        // The teardown is scheduled before the driving loops are woken: whatever their wakers
        // do (they run guarded), the context is destroyed.
        let flush = close_taking_flush(&self.shared);
        let mut drain = Drain {
            pending: Some(Pending::new()),
            shared: self.shared.clone(),
            backoff: Backoff::default(),
            busy: 0,
            kept: Vec::new(),
        };
        teardown_in_steps(Box::new(move || drain.step()));
        flush.wake(Some(&self.shared.table));
    }
}

/// Marks the driver shut down and wakes its driving loops (each waker guarded: see
/// [`Flush::wake`]).
fn close(shared: &Shared) {
    close_taking_flush(shared).wake(Some(&shared.table));
}

/// Marks the driver shut down; returns the driving loops' wakers, to wake outside the lock.
fn close_taking_flush(shared: &Shared) -> Flush {
    let mut t = lock(&shared.table);
    t.closed = true;
    t.take_flush()
}

/// The teardown of a driver whose last handle is gone (it is shut down): turn until nothing is
/// queued or in flight (the kernel completes reads and writes, polls are cancelled), sleeping
/// on the eventfd in between, then destroy the context (`io_destroy`), on a teardown thread.
/// Buffers of abandoned requests reaped here are freed after `io_destroy` has returned. A
/// driving task or thread may still be running: the final eventfd signal ends it.
///
/// It never waits for the engine's lock: a driving turn may hold it for ever (stuck inside
/// `io_submit` in a stream read, see `File`). Then the step ends, and the pool runs it again
/// later (1 ms, doubling to 100 ms), its thread free for other drivers' teardowns meanwhile.
struct Drain {
    shared: Arc<Shared>,
    backoff: Backoff,
    /// Consecutive steps that found the engine busy.
    busy: u32,
    kept: Vec<Trash>,
    /// Counts this driver among the teardowns pending until its context is destroyed.
    pending: Option<Pending>,
}

impl Drain {
    /// Drains and destroys; `Some(delay)`: the engine was busy, run again after `delay`.
    fn step(&mut self) -> Option<Duration> {
        loop {
            let Some(turn) = self.shared.try_turn_keeping(&mut self.kept) else {
                return Some(self.busy());
            };
            self.busy = 0;
            if turn.finished {
                break;
            }
            let mut fds = [rustix::event::PollFd::new(
                &self.shared.efd,
                rustix::event::PollFlags::IN,
            )];
            let timeout = self.backoff.timeout(turn.unsignalled > 0);
            // With nothing unannounced in flight, every completion signals the eventfd.
            let _ = rustix::event::poll(&mut fds, timeout.as_ref());
            drain_eventfd(self.shared.efd.as_fd(), &self.shared.origin);
        }
        let Some(mut engine) = try_lock(&self.shared.engine) else {
            return Some(self.busy());
        };
        let ctx = engine.ctx.take();
        drop(engine);
        drop(ctx); // io_destroy: nothing is in flight
        drop(self.pending.take());
        // Each buffer under its own catch_unwind, as the driving turn frees them: a second
        // panicking `Drop` while a `Vec` of them unwinds would abort the process.
        for trash in self.kept.drain(..) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(trash)));
        }
        let _ = rustix::io::write(&self.shared.efd, &1u64.to_ne_bytes());
        None
    }

    fn busy(&mut self) -> Duration {
        self.busy += 1;
        Duration::from_millis(1 << self.busy.min(7)).min(Duration::from_millis(100))
    }
}

/// How long a driving loop sleeps while requests the eventfd will not announce are in flight
/// (see [`Turn::unsignalled`]): from 50 µs, doubling up to 4 ms; `None` (sleep until the
/// eventfd) when there are none.
#[derive(Default)]
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn next(&mut self, unsignalled: bool) -> Option<std::time::Duration> {
        if !unsignalled {
            self.0 = 0;
            return None;
        }
        let us = (50u64 << self.0.min(6)).min(4000);
        self.0 += 1;
        Some(std::time::Duration::from_micros(us))
    }

    pub(crate) fn timeout(&mut self, unsignalled: bool) -> Option<rustix::event::Timespec> {
        self.next(unsignalled).map(|d| rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: d.subsec_nanos().into(),
        })
    }
}

/// Teardown work (`io_destroy`, ~35 ms each, and draining) runs on at most this many threads
/// (`linux-aio-destroy`) at once, however many drivers are dropped; they end when idle.
const TEARDOWN_THREADS: usize = 4;

/// A teardown job, run in steps: `Some(delay)` asks to be run again after `delay` (the pool's
/// thread meanwhile runs other jobs), `None` means done.
type Job = Box<dyn FnMut() -> Option<Duration> + Send>;

struct Pool {
    /// Jobs, each with the time it may run.
    jobs: VecDeque<(Instant, Job)>,
    threads: usize,
}

/// The teardown pool of one process. A forked child inherits the parent's pool as memory only:
/// its bookkeeping (`threads`, the queue) but not its threads, and its lock as it was at the
/// fork, maybe held. So the child never uses it: it makes a pool of its own (the parent's copy
/// is left alone, leaked).
struct Teardowns {
    origin: Origin,
    /// Drivers shut down whose context is not destroyed yet (see [`Pending`]).
    pending: AtomicUsize,
    pool: Mutex<Pool>,
    ready: Condvar,
}

/// This process's pool (null until the first teardown); never freed.
static TEARDOWNS: AtomicPtr<Teardowns> = AtomicPtr::new(std::ptr::null_mut());

fn teardowns() -> &'static Teardowns {
    loop {
        let current = TEARDOWNS.load(Ordering::Acquire);
        // SAFETY: a non-null pointer in TEARDOWNS comes from `Box::into_raw` below and is
        // never freed, so it is valid for the rest of the process (in a forked child too, whose
        // memory is a copy); the Release/Acquire pair makes its contents visible.
        if let Some(t) = unsafe { current.as_ref() } {
            if !t.origin.forked() {
                return t;
            }
        }
        let fresh = Box::into_raw(Box::new(Teardowns {
            origin: Origin::current(),
            pending: AtomicUsize::new(0),
            pool: Mutex::new(Pool {
                jobs: VecDeque::new(),
                threads: 0,
            }),
            ready: Condvar::new(),
        }));
        match TEARDOWNS.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just installed; never freed (see above).
            Ok(_) => return unsafe { &*fresh },
            // SAFETY: `fresh` was never published: this is its only pointer.
            Err(_) => drop(unsafe { Box::from_raw(fresh) }),
        }
    }
}

/// One driver whose teardown is scheduled and whose context is not destroyed yet: counted in
/// this process's [`Teardowns::pending`] while it lives.
struct Pending(&'static Teardowns);

impl Pending {
    fn new() -> Pending {
        let td = teardowns();
        td.pending.fetch_add(1, Ordering::AcqRel);
        Pending(td)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Drivers of this process shut down whose context is not destroyed yet (0 in a forked child,
/// whose parent's teardowns are not its own).
fn pending_teardowns() -> usize {
    let current = TEARDOWNS.load(Ordering::Acquire);
    // SAFETY: as in `teardowns`: a non-null pointer in TEARDOWNS is valid for ever.
    match unsafe { current.as_ref() } {
        Some(t) if !t.origin.forked() => t.pending.load(Ordering::Acquire),
        _ => 0,
    }
}

/// How long [`Builder::build`] waits at most for this process's pending teardowns when the
/// kernel refuses a new context with `EAGAIN` (see there).
const EAGAIN_WAIT: Duration = Duration::from_secs(5);

/// `io_setup`, with back-pressure on this process's own teardowns: `EAGAIN` (the system-wide
/// `fs.aio-max-nr` reached) while drivers of this process are shut down but their contexts not
/// yet destroyed (the teardown pool runs behind: ~35 ms per `io_destroy`, on at most
/// [`TEARDOWN_THREADS`] threads) waits until one of them is destroyed, in 1 ms slices, and
/// tries again, for at most [`EAGAIN_WAIT`] in all. With none pending, `EAGAIN` is returned at
/// once (the room is held by live drivers or by other processes).
fn new_context(capacity: u32) -> std::io::Result<linux_aio::Context> {
    let mut deadline = None;
    loop {
        match linux_aio::Context::new(capacity) {
            Err(Errno::AGAIN) => {
                let before = pending_teardowns();
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + EAGAIN_WAIT);
                if before == 0 || Instant::now() >= deadline {
                    return Err(Errno::AGAIN.into());
                }
                while pending_teardowns() >= before && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            r => return r.map_err(Into::into),
        }
    }
}

/// Runs `job` on a teardown thread, never on the caller's (which may be an executor's); only
/// if no thread can be had at all does it run here.
pub(crate) fn teardown(job: impl FnOnce() + Send + 'static) {
    let mut job = Some(job);
    teardown_in_steps(Box::new(move || {
        if let Some(job) = job.take() {
            job();
        }
        None
    }));
}

/// Runs `job` on a teardown thread, again after each delay it asks for.
fn teardown_in_steps(job: Job) {
    let td = teardowns();
    let mut pool = lock(&td.pool);
    pool.jobs.push_back((Instant::now(), job));
    td.ready.notify_one();
    if pool.threads >= TEARDOWN_THREADS {
        return;
    }
    pool.threads += 1;
    drop(pool);
    let spawned = std::thread::Builder::new()
        .name("linux-aio-destroy".into())
        .spawn(move || teardown_thread(td));
    if spawned.is_err() {
        let mut pool = lock(&td.pool);
        pool.threads -= 1;
        if pool.threads == 0 {
            let jobs = std::mem::take(&mut pool.jobs);
            drop(pool);
            for (_, mut job) in jobs {
                while let Some(delay) = job() {
                    std::thread::sleep(delay);
                }
            }
        }
    }
}

fn teardown_thread(td: &'static Teardowns) {
    let mut pool = lock(&td.pool);
    loop {
        let Some(due) = pool.jobs.iter().map(|&(due, _)| due).min() else {
            pool.threads -= 1;
            return;
        };
        let now = Instant::now();
        if due > now {
            // Only jobs waiting to run again: sleep until the first is due, or a new job comes.
            pool = match td.ready.wait_timeout(pool, due - now) {
                Ok((pool, _)) => pool,
                Err(poisoned) => poisoned.into_inner().0,
            };
            continue;
        }
        let k = pool.jobs.iter().position(|&(d, _)| d == due);
        let Some((_, mut job)) = k.and_then(|k| pool.jobs.remove(k)) else {
            continue;
        };
        drop(pool);
        // A panicking job (a buffer's Drop) must not take the thread's count with it; nor may
        // dropping a finished one (what it kept).
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut job))
            .ok()
            .flatten();
        if again.is_none() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(job)));
            pool = lock(&td.pool);
            continue;
        }
        pool = lock(&td.pool);
        if let Some(delay) = again {
            pool.jobs.push_back((Instant::now() + delay, job));
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.stats();
        f.debug_struct("Driver")
            .field("slots", &self.shared().slots)
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

/// Identifies the process that created the driver, so that a forked child's copy refuses work
/// instead of touching the parent's requests.
#[derive(Clone, Copy)]
pub(crate) struct Origin {
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

    pub(crate) fn forked(&self) -> bool {
        match self.token {
            // One load (a page wiped on fork), as the core crate's own check.
            Some(token) => linux_aio::ring::process_token() != Some(token),
            None => rustix::process::getpid() != self.pid,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) engine: Mutex<Engine>,
    pub table: Mutex<Table>,
    pub efd: OwnedFd,
    pub slots: usize,
    pub(crate) origin: Origin,
}

/// Locks `m`, also after a panic elsewhere (nothing here leaves the data inconsistent across a
/// panic: user code runs outside the locks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `m` if nobody holds it (also after a panic elsewhere, as [`lock`]).
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Ring capacity the kernel is asked for by [`Driver::new`]'s callers who have no better idea.
pub const DEFAULT_CAPACITY: u32 = 256;

/// The most table slots a driver may have (a slot takes about 200 bytes, allocated up front).
pub const MAX_SLOTS: usize = 1 << 20;

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
    ///
    /// Back-pressure: a dropped driver's context is destroyed later, on a teardown thread, and
    /// counts against the system-wide `fs.aio-max-nr` until then. So a program that makes and
    /// drops drivers faster than they are destroyed could see `EAGAIN` with a single driver
    /// alive; instead, when the kernel refuses with `EAGAIN` while this process has teardowns
    /// pending, this call **blocks** (up to 5 s in all) until one of them has destroyed its
    /// context, and tries again. `EAGAIN` is returned at once when none is pending (the room
    /// is held by live drivers, or by other processes), or after those 5 s.
    pub fn build(self) -> std::io::Result<Driver> {
        let slots = self.slots.unwrap_or(self.capacity as usize);
        if slots == 0 || slots > MAX_SLOTS {
            return Err(Errno::INVAL.into());
        }
        let ctx = new_context(self.capacity)?;
        let efd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        let table = Table {
            slots: (0..slots).map(|_| Slot::new()).collect(),
            free: (0..slots as u32).rev().collect(),
            pending: Queue::new(slots),
            cancels: Vec::with_capacity(slots),
            room: BTreeMap::new(),
            granted: BTreeMap::new(),
            next_waiter: 0,
            flush: Vec::new(),
            flush_spare: Vec::new(),
            next_loop: 1,
            in_flight: 0,
            closed: false,
            broken: None,
            reaped: 0,
            submit_calls: 0,
            ring_full: 0,
            unsignalled: 0,
            always_signal: false,
            finish_announced: false,
        };
        let engine = Engine::new(ctx, slots);
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            table: Mutex::new(table),
            efd,
            slots,
            origin: Origin::current(),
        });
        Ok(Driver(Arc::new(Owner { shared })))
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

    /// The eventfd the kernel signals on completions, for a driving loop of your own: wait
    /// until it is readable (or the waker given to [`Driver::turn`] is woken), read it
    /// (non-blocking; it is opened `O_NONBLOCK`), then call [`Driver::turn`]; turn again soon
    /// rather than wait while [`Turn::unsignalled`] is not 0.
    pub fn eventfd(&self) -> BorrowedFd<'_> {
        self.shared().efd.as_fd()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0.shared
    }

    /// A snapshot of the table.
    pub fn stats(&self) -> Stats {
        let t = lock(&self.shared().table);
        Stats {
            queued: t.pending.len(),
            in_kernel: t.in_flight,
            waiting_for_slot: t.room.len() + t.granted.len(),
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
        close(self.shared());
    }

    /// One turn of the driving loop: registers `waker` to be woken when a future queues a
    /// request (or asks for a cancellation; it replaces the waker of the previous call, while
    /// every thread and task of [`Driver::spawn_thread`] and [`Driver::spawn_tokio`] keeps a
    /// registration of its own, and all of them are woken, so several driving loops, even on
    /// runtimes that go away, never leave a request unsubmitted while one of them lives), submits the whole queue with one `io_submit`,
    /// cancels abandoned polls, reaps every completion waiting in the ring (no system call) and
    /// wakes their futures. Never blocks (buffered file I/O aside, which the kernel performs
    /// inside `io_submit`). Safe to call from several threads; turns run one at a time.
    pub fn turn(&self, waker: &Waker) -> Turn {
        self.shared().turn(0, waker)
    }

    /// True if `self` and `other` are clones of the same driver.
    pub fn same_driver(&self, other: &Driver) -> bool {
        Arc::ptr_eq(self.shared(), other.shared())
    }
}

/// Reads the eventfd to reset it (it is non-blocking: `EAGAIN` when already 0). Never in a
/// forked child: the eventfd is shared with the parent, and a child that reset it could take
/// the parent's wake-up (epoll re-checks an edge-triggered eventfd's count before reporting it).
pub(crate) fn drain_eventfd(fd: BorrowedFd<'_>, origin: &Origin) {
    if origin.forked() {
        return;
    }
    let mut count = [0u8; 8];
    let _ = rustix::io::read(fd, &mut count);
}

/// A driving loop (a thread or tokio task of this crate): its id among the wakers the table
/// wakes when a request is queued. Dropped when the loop ends, or when its future is dropped
/// (a runtime shut down): its waker leaves the table then.
pub(crate) struct Loop {
    pub(crate) shared: std::sync::Weak<Shared>,
    pub(crate) id: u64,
}

impl Loop {
    pub(crate) fn new(shared: &Arc<Shared>) -> Loop {
        let id = {
            let mut t = lock(&shared.table);
            t.next_loop += 1;
            t.next_loop - 1
        };
        Loop {
            shared: Arc::downgrade(shared),
            id,
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if shared.forked() {
            return; // the table's lock may have been held at the fork
        }
        let old = lock(&shared.table).unregister(self.id);
        drop(old);
    }
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
        // Nothing else refers to the table: no handle, future or turn in progress.
        let engine = self
            .engine
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let table = self.table.get_mut().unwrap_or_else(PoisonError::into_inner);
        let teardown_job = Teardown {
            ctx: engine.ctx.take(),
            _slots: std::mem::take(&mut table.slots),
            _iocbs: std::mem::take(&mut engine.iocbs),
        };
        if teardown_job.ctx.is_none() || self.origin.forked() {
            // Already destroyed (the kernel holds nothing), or a forked child's copy (whose
            // io_destroy fails at once): the buffers can go here.
            drop(teardown_job);
        } else {
            // Never io_destroy (tens of milliseconds) on the caller's thread, which may be an
            // executor's; the kept buffers go after it returns.
            teardown(move || drop(teardown_job));
        }
        // A driving task still waiting ends when it sees the driver gone.
        table.take_flush().wake(None);
    }
}
