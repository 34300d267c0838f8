//! `Context`: one kernel AIO context, its completion ring, submission, waiting and cancellation.

use core::ffi::c_long;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::null_mut;
use core::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;

use crate::owner::Owner;
use crate::raw::{self, __aio_sigset, __kernel_timespec, aio_context_t, io_event, iocb};
use crate::request::Request;
use crate::ring::Ring;

/// Turns a raw-layer return value into a `Result`.
#[inline]
#[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets, i64 elsewhere
pub(crate) fn check(ret: c_long) -> Result<usize, Errno> {
    if raw::is_error(ret) {
        // The ENOSYS module reports Linux's ENOSYS; say so in the platform's own numbering.
        Err(if raw::ARCH == "enosys" {
            Errno::NOSYS
        } else {
            Errno::from_raw_os_error(-ret as i32)
        })
    } else {
        Ok(ret as usize)
    }
}

/// A completion, exactly as the kernel reported it (`struct io_event`).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Event(io_event);

impl Event {
    /// The request's [`Request::user_data`].
    #[inline]
    pub fn user_data(&self) -> u64 {
        self.0.data
    }

    /// The result: bytes transferred for reads and writes, 0 for fsync, the ready mask for poll
    /// (0 for a cancelled poll), or the request's error.
    ///
    /// A negative value outside the errno range (`-4095..=-1`), which no kernel produces but
    /// scribbled ring memory could, is reported as `EIO` rather than trusted.
    #[inline]
    pub fn result(&self) -> Result<usize, Errno> {
        match self.0.res {
            res @ 0.. => Ok(res as usize),
            res @ -4095..=-1 => Err(Errno::from_raw_os_error(-res as i32)),
            _ => Err(Errno::IO),
        }
    }

    /// A POLL's result as the events that are ready ([`Request::poll`]): `Ok` with the
    /// kernel's mask (empty for a cancelled poll), or the request's error. The other kinds of
    /// request report a count, which this would misread: use it on polls only.
    ///
    /// ```
    /// use linux_aio::{Context, Request};
    /// use rustix::event::{eventfd, EventfdFlags, PollFlags};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # if let Err(rustix::io::Errno::NOSYS) = Context::new(1) { return Ok(()) }
    /// let efd = eventfd(1, EventfdFlags::CLOEXEC)?; // readable and writable now
    /// let mut ctx = Context::new(4)?;
    /// let ready = ctx.scope::<1, _>(|s| -> Result<PollFlags, rustix::io::Errno> {
    ///     s.submit(Request::poll(rustix::fd::AsFd::as_fd(&efd), PollFlags::IN | PollFlags::OUT))?;
    ///     s.wait(1, None)?.next().unwrap().event.poll_flags()
    /// })?;
    /// assert!(ready.contains(PollFlags::IN | PollFlags::OUT));
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn poll_flags(&self) -> Result<PollFlags, Errno> {
        // The kernel's mask is 16 bits (the iocb took it from `aio_buf`, checked to fit);
        // rustix's flag type is u16 or i16 depending on its backend.
        #[allow(clippy::unnecessary_cast)]
        self.result()
            .map(|mask| PollFlags::from_bits_retain(mask as u16 as _))
    }

    /// The event's second result word (`io_event::res2`): 0 for every request kind in current
    /// kernels except USB gadget I/O.
    pub fn res2(&self) -> i64 {
        self.0.res2
    }

    /// The address of the `iocb` the request was submitted from (`io_event::obj`).
    #[inline]
    pub fn iocb_address(&self) -> u64 {
        self.0.obj
    }

    /// The raw event.
    #[inline]
    pub fn as_raw(&self) -> &io_event {
        &self.0
    }

    /// An event with these raw contents.
    #[inline]
    pub fn from_raw(event: io_event) -> Event {
        Event(event)
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("user_data", &self.0.data)
            .field("result", &self.result())
            .field("res2", &self.0.res2)
            .field("iocb", &format_args!("{:#x}", self.0.obj))
            .finish()
    }
}

/// Fewer requests were submitted than asked: `submitted` were accepted (and will complete),
/// then `error` stopped the rest, which were not submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitError {
    /// How many requests, from the start of the batch, the kernel accepted.
    pub submitted: usize,
    /// Why the next one was refused (`EAGAIN`: no room in the ring; `EBADF`, `EINVAL`, ...).
    pub error: Errno,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "io_submit accepted {} request(s), then failed: {}",
            self.submitted, self.error
        )
    }
}

impl core::error::Error for SubmitError {}

/// The error alone, for `?` in functions that return `Errno` (the count accepted is lost).
impl From<SubmitError> for Errno {
    fn from(e: SubmitError) -> Errno {
        e.error
    }
}

/// What `io_cancel` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Cancelled, and the kernel handed the final event back at once (kernels before 3.12).
    /// No event for the request will come through the ring.
    Canceled(Event),
    /// Cancellation started (Linux 3.12 and later): the request's event (result 0 for a poll)
    /// will be delivered by a later wait.
    InProgress,
    /// Nothing to cancel: the request cannot be cancelled (only polls can), or it has already
    /// completed (the kernel's `EINVAL`, or `EAGAIN` before 3.12). The scoped API tells those
    /// two apart ([`ScopedCancel`](crate::ScopedCancel)).
    NotCanceled,
}

/// A signal set in the kernel's format, for [`Context::wait_with_sigmask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigSet(u64);

impl SigSet {
    /// No signals.
    pub const fn empty() -> SigSet {
        SigSet(0)
    }

    /// Every signal but 32, 33 and 34, as `sigfillset(3)` gives it: glibc and musl keep those
    /// for their threads (cancellation, and the `setxid` broadcast that `setuid` in another
    /// thread waits on), so blocking them would stall that thread for the length of the wait.
    /// The kernel never blocks SIGKILL and SIGSTOP. `SigSet::full().with(32)` adds one back.
    pub const fn full() -> SigSet {
        SigSet(!(0b111 << 31))
    }

    /// This set plus signal number `signal` (1..=64); other numbers are ignored.
    pub const fn with(self, signal: i32) -> SigSet {
        if signal >= 1 && signal <= 64 {
            SigSet(self.0 | 1 << (signal - 1))
        } else {
            self
        }
    }

    /// True if `signal` is in the set.
    pub const fn contains(self, signal: i32) -> bool {
        signal >= 1 && signal <= 64 && self.0 & (1 << (signal - 1)) != 0
    }
}

/// One kernel AIO context.
///
/// Submission (`&self`) may happen from many threads at once; waiting and cancellation
/// bookkeeping happen through `&mut self`, so exactly one thread reaps completions, as reading
/// the ring from user space requires. `Context` is `Send` and `Sync`.
///
/// Dropping a context calls `io_destroy`, which first waits for every request still in flight
/// (cancelling polls): tens of milliseconds even when idle (RCU grace periods). Keep it off hot
/// paths: reuse contexts, call [`Context::destroy`] where the delay and its error are welcome,
/// or move the context to another thread to drop it there.
///
/// # fork
/// A forked child inherits a copy of the `Context` and a shared mapping of its ring, but not the
/// kernel context: to the child, every call fails with `EINVAL` (what the kernel itself answers
/// the child for that context id), and nothing it does consumes, reorders or alters the
/// parent's completions. [`Context::ready`] answers `None` there. Telling the child apart costs
/// one load on Linux 4.14 and later (a token page marked `MADV_WIPEONFORK`); on older kernels
/// the ring is not read in user space at all, so the kernel refuses the child by itself.
/// Dropping the child's copy is harmless (its `io_destroy` fails). The child's own contexts
/// are unaffected.
pub struct Context {
    id: aio_context_t,
    ring: Option<Ring>,
    user_space_reaping: bool,
    owner: Owner,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &format_args!("{:#x}", self.id))
            .field("ring_slots", &self.ring.as_ref().map(Ring::nr))
            .field("user_space_reaping", &self.user_space_reaping())
            .finish()
    }
}

fn timespec(timeout: Duration) -> __kernel_timespec {
    __kernel_timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: timeout.subsec_nanos().into(),
    }
}

impl Context {
    /// `io_setup`: a context for up to `capacity` requests in flight. The kernel may make room
    /// for more. Errors: `EINVAL` (capacity 0), `EAGAIN` (beyond `fs.aio-max-nr`), `ENOSYS`
    /// (no kernel AIO: `CONFIG_AIO=n`, qemu-user, or a target without an architecture module).
    ///
    /// ```
    /// # fn main() -> Result<(), rustix::io::Errno> {
    /// # if let Err(rustix::io::Errno::NOSYS) = linux_aio::Context::new(1) { return Ok(()) }
    /// let ctx = linux_aio::Context::new(64)?;
    /// assert!(ctx.ring_slots().unwrap_or(64) >= 64);
    /// ctx.destroy()?;
    /// # Ok(()) }
    /// ```
    pub fn new(capacity: u32) -> Result<Context, Errno> {
        let mut id: aio_context_t = 0;
        // SAFETY: id is a valid, zeroed aio_context_t.
        check(unsafe { raw::io_setup(capacity, &mut id) })?;
        let owner = Owner::current();
        // SAFETY: io_setup has just mapped the ring at `id` in this process; it stays mapped
        // until io_destroy, which only `Drop`, `destroy` and `destroy_in_place` call, after
        // which the Ring is gone. A forked child never reads it (`owner`).
        let ring = unsafe { Ring::attach(id as *mut raw::aio_ring) };
        // Without a one-load fork check, the ring is left to the kernel (see "fork" above).
        let user_space_reaping = ring.is_some() && owner.is_cheap();
        Ok(Context {
            id,
            ring,
            user_space_reaping,
            owner,
        })
    }

    /// The kernel's context id (`aio_context_t`), for the raw layer.
    pub fn id(&self) -> aio_context_t {
        self.id
    }

    /// Number of completion slots in the ring, if it can be read from user space.
    pub fn ring_slots(&self) -> Option<u32> {
        self.ring.as_ref().map(Ring::nr)
    }

    /// Completions waiting in the ring now, read without a system call (`None` if the ring
    /// cannot be read from user space, or in a forked child).
    pub fn ready(&self) -> Option<usize> {
        if self.owner.forked_slow() {
            return None;
        }
        self.ring.as_ref().filter(|r| r.intact()).map(Ring::pending)
    }

    /// True if waits take completions straight from the ring before making a system call
    /// (never in a forked child, whose waits all fail).
    pub fn user_space_reaping(&self) -> bool {
        self.user_space_reaping && self.ring.is_some() && !self.owner.forked()
    }

    /// Turns user-space reaping on (the default where the ring is usable) or off (every wait
    /// is an `io_getevents` call). Both return exactly the same events. On kernels before
    /// 4.14 it stays off (see "fork" above).
    pub fn set_user_space_reaping(&mut self, on: bool) {
        self.user_space_reaping = on && self.owner.is_cheap();
    }

    /// The process that created the context (see "fork" above).
    pub(crate) fn owner(&self) -> Owner {
        self.owner
    }

    /// `io_destroy`, reporting its error. Waits for every request in flight first.
    pub fn destroy(self) -> Result<(), Errno> {
        let id = self.id;
        core::mem::forget(self);
        // SAFETY: the context is consumed; nothing can use its id or ring afterwards.
        check(unsafe { raw::io_destroy(id) }).map(drop)
    }

    /// The submission half, for sharing with other threads while this one reaps; see
    /// [`Submitter`].
    pub fn submitter(&self) -> Submitter<'_> {
        Submitter {
            id: self.id,
            owner: self.owner,
            _ctx: PhantomData,
        }
    }

    /// Splits the context into its shareable submission half and its unique reaping half, so
    /// that other threads can submit while one thread waits.
    pub fn split(&mut self) -> (Submitter<'_>, Reaper<'_>) {
        (
            Submitter {
                id: self.id,
                owner: self.owner,
                _ctx: PhantomData,
            },
            Reaper { ctx: self },
        )
    }

    /// See [`Submitter::submit`].
    ///
    /// # Safety
    /// As [`Submitter::submit`].
    #[inline]
    pub unsafe fn submit(&self, requests: &mut [&mut Request<'_>]) -> Result<usize, SubmitError> {
        // SAFETY: forwarded to the caller.
        unsafe { self.submitter().submit(requests) }
    }

    /// See [`Submitter::submit_raw`].
    ///
    /// # Safety
    /// As [`Submitter::submit_raw`].
    #[inline]
    pub unsafe fn submit_raw(&self, iocbs: *mut *mut iocb, n: usize) -> Result<usize, SubmitError> {
        // SAFETY: forwarded to the caller.
        unsafe { submit_on(self.id, &self.owner, iocbs, n) }
    }

    /// See [`Submitter::cancel`].
    pub fn cancel(&self, iocb: *const iocb) -> Result<Cancel, Errno> {
        self.submitter().cancel(iocb)
    }

    /// Destroys the kernel context now (waiting for every request in flight), leaving this
    /// value dead: every later call fails with `EINVAL`. For the scope's last-resort drain,
    /// whose buffers are freed once this returns: if `io_destroy` fails, nothing says the
    /// kernel is done with them, and the process is ended ([`abort`]) rather than let it write
    /// into freed memory.
    pub(crate) fn destroy_in_place(&mut self) {
        self.ring = None;
        let id = core::mem::replace(&mut self.id, 0);
        // SAFETY: the ring's reader is gone (above) and `&mut self` keeps every other user of
        // this context out; the id is now 0, which no context has, so nothing reaches the
        // destroyed context or its unmapped ring afterwards.
        let r = unsafe { raw::io_destroy(id) };
        if r < 0 {
            abort(
                "linux-aio: a scope's last-resort io_destroy failed with requests in flight; \
                 their buffers are not safe to free, so the process ends",
            );
        }
    }

    /// Waits until at least `min` completions are available (or `timeout` passes; `None` waits
    /// for ever), then stores up to `events.len()` of them. Returns how many were stored: fewer
    /// than `min` only if the timeout expired, or a signal arrived after some were taken.
    ///
    /// Errors: `EINVAL` if `min > events.len()`, `EINTR` if a signal arrived before any
    /// completion (never retried behind your back). With `timeout: None` and fewer than `min`
    /// requests in flight, the wait never ends: the context does not count what the unsafe API
    /// submitted (the scoped API does, and refuses such a wait with `EINVAL`).
    #[inline]
    ///
    /// ```
    /// use linux_aio::{Context, Event, Request};
    /// use std::os::fd::AsFd;
    /// use std::time::Duration;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # if let Err(rustix::io::Errno::NOSYS) = Context::new(1) { return Ok(()) }
    /// let file = std::fs::File::open("Cargo.toml")?;
    /// let mut ctx = Context::new(8)?;
    /// let mut buf = [0u8; 64];
    /// let mut req = Request::read(file.as_fd(), &mut buf, 0).user_data(1);
    /// // SAFETY: `buf` (borrowed by `req`) outlives the wait below, which reaps the request.
    /// assert_eq!(unsafe { ctx.submit(&mut [&mut req]) }, Ok(1));
    /// let mut events = [Event::default(); 4];
    /// let n = ctx.wait(&mut events, 1, Some(Duration::from_secs(5)))?;
    /// assert_eq!((n, events[0].user_data(), events[0].result()), (1, 1, Ok(64)));
    /// # Ok(()) }
    /// ```
    pub fn wait(
        &mut self,
        events: &mut [Event],
        min: usize,
        timeout: Option<Duration>,
    ) -> Result<usize, Errno> {
        // The common case, inline: `min` completions are already in the ring.
        match self.reap_ring(events, min) {
            Some(got) if got >= min => Ok(got),
            reaped => self.wait_inner(events, min, timeout, None, reaped),
        }
    }

    /// [`Context::wait`] with `mask` installed as the thread's signal mask for the duration of
    /// the wait, atomically (`io_pgetevents`, Linux 4.18; `ENOSYS` before).
    ///
    /// The mask matters only while waiting: when `min` completions are already in the ring
    /// they are returned without a system call (and so without `ENOSYS` on old kernels); turn
    /// [`Context::set_user_space_reaping`] off to make every call reach `io_pgetevents`.
    pub fn wait_with_sigmask(
        &mut self,
        events: &mut [Event],
        min: usize,
        timeout: Option<Duration>,
        mask: &SigSet,
    ) -> Result<usize, Errno> {
        match self.reap_ring(events, min) {
            Some(got) if got >= min => Ok(got),
            reaped => self.wait_inner(events, min, timeout, Some(mask), reaped),
        }
    }

    /// Takes up to `events.len()` completions that are ready now, without waiting.
    pub fn try_wait(&mut self, events: &mut [Event]) -> Result<usize, Errno> {
        self.wait(events, 0, Some(Duration::ZERO))
    }

    /// Takes what the ring holds (up to `events.len()`) when a wait may read it: user-space
    /// reaping on, the header intact, `min` possible and the caller the context's owner.
    /// `None` when it may not (the wait then goes to the kernel, or fails).
    #[inline]
    fn reap_ring(&mut self, events: &mut [Event], min: usize) -> Option<usize> {
        // A forked child must not reap its parent's ring; the kernel refuses it the syscall.
        if min > events.len() || !self.user_space_reaping || self.owner.forked() {
            return None;
        }
        let ring = self.ring.as_mut().filter(|r| r.intact())?;
        // SAFETY: Event is repr(transparent) over io_event.
        let out = unsafe { &mut *(events as *mut [Event] as *mut [io_event]) };
        Some(ring.reap(out))
    }

    /// The ring half of a wait that keeps only the events `keep` accepts (for the scoped API):
    /// takes what the ring holds, up to `events.len()`, storing the kept ones at the front of
    /// `events`, and returns how many it took and kept. `None` when the ring may not be read
    /// (user-space reaping off, the header not intact); then, or when fewer than `min` were
    /// taken, [`Context::wait_keeping_rest`] goes on.
    ///
    /// The caller has checked that this process owns the context (a forked child must never
    /// read its parent's ring): the scope does, with the same owner, on every call. It has also
    /// checked that `min <= events.len()`.
    #[inline]
    pub(crate) fn reap_ring_keeping(
        &mut self,
        events: &mut [Event],
        min: usize,
        keep: impl FnMut(&io_event) -> bool,
    ) -> Option<(usize, usize)> {
        debug_assert!(min <= events.len());
        if !self.user_space_reaping {
            return None;
        }
        let ring = self.ring.as_mut().filter(|r| r.intact())?;
        // SAFETY: Event is repr(transparent) over io_event.
        let out = unsafe { &mut *(events as *mut [Event] as *mut [io_event]) };
        // Copy first, then match: two tight loops rather than one that runs out of registers.
        let taken = ring.reap(out);
        Some((taken, keep_in_place(&mut events[..taken], keep)))
    }

    /// The rest of a wait begun by [`Context::reap_ring_keeping`] (`seen` is what it returned),
    /// out of line: the argument checks when the ring was not read, then the system call
    /// ([`Context::wait_with_sigmask`]'s with `mask`) for what the ring did not hold. `min`
    /// counts every event taken, kept or not, as the kernel does. Returns how many it kept in
    /// all, at the front of `events`.
    #[inline]
    pub(crate) fn wait_keeping_rest(
        &mut self,
        events: &mut [Event],
        min: usize,
        timeout: Option<Duration>,
        mask: Option<&SigSet>,
        seen: Option<(usize, usize)>,
        keep: impl FnMut(&io_event) -> bool,
    ) -> Result<usize, Errno> {
        let (taken, kept) = seen.unwrap_or((0, 0));
        // The events not kept left room: the rest lands after the kept ones.
        let rest = &mut events[kept..];
        let need = min.saturating_sub(taken);
        let got = match self.wait_inner(rest, need, timeout, mask, seen.map(|_| 0)) {
            Ok(n) => n,
            Err(_) if taken > 0 => return Ok(kept),
            Err(e) => return Err(e),
        };
        Ok(kept + keep_in_place(&mut rest[..got], keep))
    }

    /// True if a completion of the request at `iocb` waits in the ring (`None`: cannot tell).
    pub(crate) fn completion_waiting(&mut self, iocb: u64) -> Option<bool> {
        if self.owner.forked_slow() {
            return None;
        }
        self.ring
            .as_ref()
            .filter(|r| r.intact())
            .map(|r| r.contains(iocb))
    }

    /// The rest of a wait: the argument checks (unless [`Context::reap_ring`] ran, `reaped`
    /// being what it took) and the system call for what the ring did not hold.
    ///
    /// Inline, as is everything between a caller and a system call on this crate's paths: on
    /// machines with return-stack mitigations (measured: Zen 3, SRSO "Safe RET") a function
    /// return that pops an address pushed before the system call costs about 170 ns, more than
    /// the rest of a POLL round trip's user-space work.
    #[inline]
    fn wait_inner(
        &mut self,
        events: &mut [Event],
        min: usize,
        timeout: Option<Duration>,
        mask: Option<&SigSet>,
        reaped: Option<usize>,
    ) -> Result<usize, Errno> {
        let got = match reaped {
            Some(got) => got,
            // A forked child must not reap its parent's ring; the kernel refuses it the syscall.
            None if min > events.len() || self.owner.forked() => return Err(Errno::INVAL),
            None => 0,
        };
        let rest = &mut events[got..];
        let mut ts = timeout.map(timespec);
        let ts_ptr = ts
            .as_mut()
            .map_or(null_mut(), |t| t as *mut __kernel_timespec);
        let (min_nr, nr) = (
            (min - got) as c_long,
            rest.len().min(c_long::MAX as usize) as c_long,
        );
        let ptr = rest.as_mut_ptr().cast::<io_event>();
        let ret = match mask {
            // SAFETY: `rest` is writable for `nr` events; `ts_ptr` is null or a live timespec.
            None => unsafe { raw::io_getevents(self.id, min_nr, nr, ptr, ts_ptr) },
            Some(mask) => {
                let sig = __aio_sigset {
                    sigmask: (&mask.0 as *const u64).cast(),
                    sigsetsize: raw::KERNEL_SIGSET_SIZE,
                };
                // SAFETY: as above; `sig` points to a live 8-byte kernel sigset.
                unsafe { raw::io_pgetevents(self.id, min_nr, nr, ptr, ts_ptr, &sig) }
            }
        };
        match check(ret) {
            Ok(n) => Ok(got + n),
            Err(_) if got > 0 => Ok(got),
            Err(e) => Err(e),
        }
    }
}

/// Keeps the events of `events` that `keep` accepts, in order, at its front; returns how many.
#[inline]
fn keep_in_place(events: &mut [Event], mut keep: impl FnMut(&io_event) -> bool) -> usize {
    let mut kept = 0;
    for k in 0..events.len() {
        if keep(events[k].as_raw()) {
            // Only when an event was dropped before this one (rare: stale or foreign ones).
            if kept != k {
                events[kept] = events[k];
            }
            kept += 1;
        }
    }
    kept
}

/// [`Submitter::submit_raw`] on context `id`, owned by `owner`.
///
/// # Safety
/// As [`Submitter::submit_raw`].
#[inline(always)]
unsafe fn submit_on(
    id: aio_context_t,
    owner: &Owner,
    iocbs: *mut *mut iocb,
    n: usize,
) -> Result<usize, SubmitError> {
    if n == 0 {
        return submit_nothing(owner);
    }
    // The common case, inline: the kernel takes the whole batch at once.
    // SAFETY: forwarded to the caller.
    let ret = unsafe { raw::io_submit(id, n as c_long, iocbs) };
    if ret == n as c_long {
        return Ok(n);
    }
    // SAFETY: forwarded to the caller.
    unsafe { submit_rest(id, iocbs, n, ret) }
}

/// An empty submission: `EINVAL` in a forked child, which is what the kernel answers a child
/// for any `io_submit` on this context, even of 0 requests.
#[cold]
fn submit_nothing(owner: &Owner) -> Result<usize, SubmitError> {
    if owner.forked_slow() {
        Err(SubmitError {
            submitted: 0,
            error: Errno::INVAL,
        })
    } else {
        Ok(0)
    }
}

/// The rest of a batch the kernel did not take whole: `ret` is what its first `io_submit`
/// returned. A batch stopped part way is submitted again from the first refused request, to
/// learn its error.
///
/// # Safety
/// As [`Submitter::submit_raw`].
#[cold]
#[inline(never)]
unsafe fn submit_rest(
    id: aio_context_t,
    iocbs: *mut *mut iocb,
    n: usize,
    mut ret: c_long,
) -> Result<usize, SubmitError> {
    let mut done = 0;
    loop {
        match check(ret) {
            Ok(0) => {
                return Err(SubmitError {
                    submitted: done,
                    error: Errno::AGAIN,
                })
            }
            Ok(k) => done += k,
            Err(error) => {
                return Err(SubmitError {
                    submitted: done,
                    error,
                })
            }
        }
        if done >= n {
            return Ok(done);
        }
        // SAFETY: forwarded to the caller; `done < n` keeps the pointer in the array.
        ret = unsafe { raw::io_submit(id, (n - done) as c_long, iocbs.add(done)) };
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context is being dropped; nothing can use its id or ring afterwards.
        let _ = unsafe { raw::io_destroy(self.id) };
    }
}

/// The submission half of a [`Context`]: `Copy`, `Send` and `Sync`, for any number of threads
/// (the kernel serialises `io_submit` and `io_cancel` itself).
#[derive(Debug, Clone, Copy)]
pub struct Submitter<'a> {
    id: aio_context_t,
    owner: Owner,
    _ctx: PhantomData<&'a Context>,
}

impl Submitter<'_> {
    /// Submits `requests` in order with one `io_submit`, returning how many were accepted.
    ///
    /// A batch stopped part way (the kernel returns the count and drops the error) is submitted
    /// again from the first refused request, to learn its error: the result is then
    /// `Err(SubmitError { submitted, error })`, `submitted` counting every accepted request.
    ///
    /// # Safety
    /// Every accepted request must have its memory (the buffers it names, the iovec arrays'
    /// buffers and any eventfd) stay valid, and not be accessed except by the kernel, until its
    /// completion has been reaped. The `Request` values themselves may be dropped after this
    /// returns (the kernel copies them), but [`Submitter::cancel`] needs the same address.
    /// No request submitted this way may still be in flight when [`Context::scope`] or
    /// [`posix::with`](crate::posix::with) starts on the same context: the scope would drop
    /// its completion, and its memory could alias the scope's own slots.
    /// [`Context::scope`] proves all of this at compile time instead.
    #[inline]
    pub unsafe fn submit(&self, requests: &mut [&mut Request<'_>]) -> Result<usize, SubmitError> {
        // `&mut Request` is a pointer to a repr(C) struct whose first field is the iocb (asserted
        // at compile time in request.rs).
        let ptrs = requests.as_mut_ptr().cast::<*mut iocb>();
        // SAFETY: forwarded to the caller.
        unsafe { self.submit_raw(ptrs, requests.len()) }
    }

    /// [`Submitter::submit`] for an array of `iocb` pointers, for callers that build iocbs
    /// themselves.
    ///
    /// # Safety
    /// `iocbs` must point to `n` pointers to valid `iocb`s; the contract of
    /// [`Submitter::submit`] applies to every request they describe.
    #[inline]
    pub unsafe fn submit_raw(&self, iocbs: *mut *mut iocb, n: usize) -> Result<usize, SubmitError> {
        // SAFETY: forwarded to the caller.
        unsafe { submit_on(self.id, &self.owner, iocbs, n) }
    }

    /// `io_cancel` for the request submitted from the `iocb` at `iocb` (the address passed to
    /// `submit`, also [`Event::iocb_address`]).
    ///
    /// The kernel looks the request up by that address; passing an address that never was a
    /// submitted iocb is harmless (`NotCanceled`, or `EFAULT` if unreadable).
    ///
    /// In a forked child: `EINVAL` (the kernel's `EINVAL` there would read as `NotCanceled`).
    pub fn cancel(&self, iocb: *const iocb) -> Result<Cancel, Errno> {
        if self.owner.forked_slow() {
            return Err(Errno::INVAL);
        }
        let mut result = io_event::default();
        // SAFETY: the kernel reads aio_key through `iocb` with a fault-checked copy and only
        // compares the address; `result` is a valid, writable event.
        let ret = unsafe { raw::io_cancel(self.id, iocb.cast_mut(), &mut result) };
        match check(ret) {
            Ok(_) => Ok(Cancel::Canceled(Event(result))),
            Err(Errno::INPROGRESS) => Ok(Cancel::InProgress),
            // "Not cancelled": EINVAL since Linux 3.12, EAGAIN before (io_cancel(2)).
            Err(Errno::INVAL | Errno::AGAIN) => Ok(Cancel::NotCanceled),
            Err(e) => Err(e),
        }
    }
}

/// The reaping half of a [`Context`]: unique, so exactly one thread takes completions.
#[derive(Debug)]
pub struct Reaper<'a> {
    ctx: &'a mut Context,
}

impl Reaper<'_> {
    /// The context, for the shared scope's reaper (which reads the ring as `Reaper` does;
    /// the submission half only holds the context's id).
    pub(crate) fn context(&mut self) -> &mut Context {
        self.ctx
    }

    /// [`Context::wait`].
    pub fn wait(
        &mut self,
        events: &mut [Event],
        min: usize,
        timeout: Option<Duration>,
    ) -> Result<usize, Errno> {
        self.ctx.wait(events, min, timeout)
    }

    /// [`Context::wait_with_sigmask`].
    pub fn wait_with_sigmask(
        &mut self,
        events: &mut [Event],
        min: usize,
        timeout: Option<Duration>,
        mask: &SigSet,
    ) -> Result<usize, Errno> {
        self.ctx.wait_with_sigmask(events, min, timeout, mask)
    }

    /// [`Context::try_wait`].
    pub fn try_wait(&mut self, events: &mut [Event]) -> Result<usize, Errno> {
        self.ctx.try_wait(events)
    }
}

// The kernel serialises io_submit, io_cancel and io_getevents on one context, so a Context may
// move between threads and be shared; only ring reaping needs one thread, which `&mut self`
// (or the one Reaper) guarantees. A Scope keeps single-threaded bookkeeping and is not Sync,
// so the `&Scope` a closure receives cannot reach another thread.
static_assertions::assert_impl_all!(Context: Send, Sync);
static_assertions::assert_impl_all!(Submitter<'static>: Send, Sync, Copy);
static_assertions::assert_impl_all!(Reaper<'static>: Send);
static_assertions::assert_impl_all!(Event: Send, Sync, Copy);
static_assertions::assert_not_impl_any!(crate::Scope<'static, 'static, 1>: Sync);

/// Ends the process: a panic raised while that panic unwinds aborts (std's rule), and a
/// `no_std` panic handler does not return. For the one state the crate cannot leave safely
/// (memory the kernel may still write, about to be freed).
#[cold]
#[inline(never)]
pub(crate) fn abort(why: &'static str) -> ! {
    struct PanicAgain(&'static str);
    impl Drop for PanicAgain {
        fn drop(&mut self) {
            panic!("{}", self.0);
        }
    }
    let _again = PanicAgain(why);
    panic!("{why}");
}
