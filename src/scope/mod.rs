//! The scoped API: requests whose buffers the borrow checker proves outlive the I/O.
//!
//! [`Context::scope`] lends the context to a closure together with a [`Scope`] of `N` request
//! slots, kept in `scope`'s own stack frame (or, with [`Context::scope_in`], in
//! [`ScopeSlots`] the caller lends). Requests submitted through the scope borrow their buffers
//! for the whole scope (`'scope`), so those buffers cannot be dropped, moved or touched until
//! the scope has ended, or until the request's completion hands the buffer back. Before
//! `scope` returns, and also while unwinding from a panic, the scope cancels what can be
//! cancelled and reaps every request still in flight: the user cannot skip that by leaking
//! anything, because the scope itself is never in the user's hands, only a reference to it.
//!
//! A [`Scope`] is used from one thread (it is not `Sync`), which lets its bookkeeping be plain
//! memory: every operation is O(1) per request ([`slots`] has the details). To submit from
//! several threads into one scope, [`Context::shared_scope`] gives a [`SharedScope`] that any
//! thread may submit through, and a single [`ScopeReaper`].

mod shared;
mod slots;

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use rustix::io::Errno;

use crate::context::{Cancel, Context, Event, SigSet, SubmitError};
use crate::owner::{ForkCheck, Owner};
use crate::raw::iocb;
use crate::request::{Buffer, Request};

pub(crate) use shared::now;
pub use shared::{ScopeReaper, SharedCompletions, SharedScope};

/// Requests per `io_submit` in [`Scope::submit_prepared`]: its pointer array is on the stack.
const SUBMIT_CHUNK: usize = 256;
pub use slots::ScopeSlots;
use slots::{Book, Lookup};

/// Names one request of one scope, to cancel it or to recognise its completion.
///
/// A ticket belongs to the scope that issued it: another scope (on the same context or
/// another) refuses it with `EINVAL`, and tickets of different scopes never compare equal,
/// even for the same slot and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// The scope's nonce.
    scope: u64,
    /// The request's stamp (its slot and generation, see `slots`).
    stamp: u64,
}

/// A request the scope did not submit, handed back with the reason.
///
/// `EAGAIN` has two causes, told apart by [`Rejected::scope_full`]: all `N` slots of the scope
/// are taken (reap, or use a larger `N`), or the kernel's ring has no room (reap; the context's
/// capacity is what `Context::new` asked for).
#[derive(Debug)]
pub struct Rejected<'scope> {
    /// Why: `EAGAIN` (no free slot, or no room in the kernel's ring), the kernel's error for
    /// this request (`EBADF`, `EINVAL`, ...), or `EINVAL` in a forked child.
    pub error: Errno,
    /// The request, buffer and all, to retry or take apart.
    pub request: Request<'scope>,
    /// No free slot in the scope (rather than a refusal by the kernel).
    scope_full: bool,
}

impl Rejected<'_> {
    /// True if the scope had no free slot; false if the kernel refused the request (then
    /// `EAGAIN` means its ring had no room).
    pub fn scope_full(&self) -> bool {
        self.scope_full
    }
}

impl From<Rejected<'_>> for Errno {
    fn from(r: Rejected<'_>) -> Errno {
        r.error
    }
}

impl core::fmt::Display for Rejected<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.scope_full {
            write!(
                f,
                "request not submitted: every slot of the scope is in use"
            )
        } else {
            write!(f, "request not submitted: {}", self.error)
        }
    }
}

impl core::error::Error for Rejected<'_> {}

/// What [`Scope::cancel`] achieved. Unlike [`Cancel`], the scope knows what it has in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopedCancel {
    /// Cancellation started (Linux 3.12 and later): the completion (result 0 for a poll) is
    /// delivered by a later wait, with the buffer.
    InProgress,
    /// Cancelled at once: the next wait hands the completion out, with the buffer, without
    /// waiting. Either the request was prepared and not yet submitted (it leaves the batch, and
    /// its result is `ECANCELED`), or the kernel returned its final event at once (kernels
    /// before 3.12).
    Canceled,
    /// The request had already completed; its completion is (or was) delivered by a wait.
    AlreadyComplete,
    /// The request is in flight and the kernel cannot cancel its kind (file reads and writes).
    NotCancelable,
}

/// A completed request of a scope.
#[derive(Debug)]
pub struct Completion<'scope> {
    /// The ticket [`Scope::submit`] returned for it.
    pub ticket: Ticket,
    /// The kernel's event (user data, result).
    pub event: Event,
    /// The request's buffer, free to use again.
    pub buffer: Buffer<'scope>,
}

/// `N` request slots lent to a [`Context::scope`] closure. See the module docs.
pub struct Scope<'scope, 'env: 'scope, const N: usize> {
    /// The context and the slots' bookkeeping. An `UnsafeCell` rather than a `RefCell`: the
    /// scope is not `Sync`, so one thread uses it, and each method holds the only reference
    /// to the contents for its own duration (see [`Scope::with`]).
    inner: UnsafeCell<Inner<'scope, 'env, N>>,
    /// Distinct for every scope of the process; part of each request's stamp and ticket.
    nonce: u64,
    /// The context's owner, copied here for the fork checks: `fork` on every call (one load),
    /// `owner` where that cannot tell (see [`Scope::forked_slow`]).
    owner: Owner,
    fork: ForkCheck,
    _scope: PhantomData<&'scope mut &'env ()>,
}

struct Inner<'scope, 'env, const N: usize> {
    ctx: &'env mut Context,
    // The kernel reads each slot's iocb at submit time and looks it up by address on cancel,
    // and reports that address in the completion: the slots must not move while the scope
    // lives, which holds because they are borrowed (`ScopeSlots`) for the whole scope.
    book: Book<'scope, N>,
}

impl Context {
    /// Runs `f` with a [`Scope`] of `N` slots on this context, and does not return until every
    /// request submitted through the scope has completed (polls are cancelled) and been reaped.
    ///
    /// Buffers must be declared outside the closure: requests borrow them for the whole scope.
    ///
    /// The `N` slots live in this function's stack frame, 148 bytes each on 64-bit targets (a
    /// [`ScopeSlots<N>`]): 148 KiB for `N = 1024`. For large scopes, or to keep the
    /// stack small, lend the slots instead with [`Context::scope_in`].
    ///
    /// ```
    /// use linux_aio::{Context, Request};
    /// use std::os::fd::AsFd;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let ctx = match Context::new(8) { Ok(c) => c, Err(rustix::io::Errno::NOSYS) => return Ok(()), Err(e) => return Err(e.into()) };
    /// # drop(ctx);
    /// let file = std::fs::File::open("Cargo.toml")?;
    /// let mut ctx = Context::new(8)?;
    /// let (mut head, mut tail) = ([0u8; 16], [0u8; 16]);
    /// let total = ctx.scope::<4, _>(|s| -> Result<usize, rustix::io::Errno> {
    ///     s.submit(Request::read(file.as_fd(), &mut head, 0).user_data(1))?;
    ///     s.submit(Request::read(file.as_fd(), &mut tail, 16).user_data(2))?;
    ///     let mut total = 0;
    ///     for done in s.wait(2, None)? {
    ///         total += done.event.result()?;
    ///     }
    ///     Ok(total)
    /// })?;
    /// assert_eq!(total, 32);
    /// assert_eq!(&head[..9], b"[package]");
    /// # Ok(()) }
    /// ```
    ///
    /// A buffer cannot be dropped while its request may be in flight:
    ///
    /// ```compile_fail,E0597
    /// # use linux_aio::{Context, Request};
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// ctx.scope::<4, _>(|s| {
    ///     let mut buf = [0u8; 16]; // lives only inside the closure
    ///     s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    /// });
    /// ```
    ///
    /// nor moved:
    ///
    /// ```compile_fail,E0505
    /// # use linux_aio::{Context, Request};
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// let mut buf = vec![0u8; 16];
    /// ctx.scope::<4, _>(|s| {
    ///     s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    ///     let moved = buf;
    /// });
    /// ```
    ///
    /// nor reused, read or written, until its completion hands it back:
    ///
    /// ```compile_fail,E0499
    /// # use linux_aio::{Context, Request};
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// let mut buf = [0u8; 16];
    /// ctx.scope::<4, _>(|s| {
    ///     s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    ///     s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    /// });
    /// ```
    ///
    /// nor written while the scope holds it:
    ///
    /// ```compile_fail,E0506
    /// # use linux_aio::{Context, Request};
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// let mut buf = [0u8; 16];
    /// ctx.scope::<4, _>(|s| {
    ///     s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    ///     buf[0] = 1;
    /// });
    /// ```
    pub fn scope<'env, const N: usize, T>(
        &'env mut self,
        f: impl for<'scope> FnOnce(&'scope Scope<'scope, 'env, N>) -> T,
    ) -> T {
        let mut slots = ScopeSlots::<N>::new();
        run(self, &mut slots, f)
    }

    /// [`Context::scope`] in slots the caller lends, so that a large scope need not be on the
    /// stack: a `static`, a `Box`, a field of a longer-lived value. The slots are reset when
    /// the scope starts and can be lent again to the next scope (see [`ScopeSlots`]).
    ///
    /// ```
    /// use linux_aio::{Context, Request, ScopeSlots};
    /// use std::os::fd::AsFd;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # if let Err(rustix::io::Errno::NOSYS) = Context::new(1) { return Ok(()) }
    /// let file = std::fs::File::open("Cargo.toml")?;
    /// let mut ctx = Context::new(8)?;
    /// let mut slots = ScopeSlots::<4>::new();
    /// let mut buf = [0u8; 9];
    /// for round in 0..2 {
    ///     ctx.scope_in(&mut slots, |s| -> Result<(), rustix::io::Errno> {
    ///         s.submit(Request::read(file.as_fd(), &mut buf, 0).user_data(round))?;
    ///         assert_eq!(s.wait(1, None)?.next().unwrap().event.user_data(), round);
    ///         Ok(())
    ///     })?;
    /// }
    /// assert_eq!(&buf, b"[package]");
    /// # Ok(()) }
    /// ```
    ///
    /// The buffers must outlive the scope, as with [`Context::scope`], whatever the slots'
    /// own lifetime:
    ///
    /// ```compile_fail,E0597
    /// # use linux_aio::{Context, Request, ScopeSlots};
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// let mut slots = ScopeSlots::<4>::new();
    /// ctx.scope_in(&mut slots, |s| {
    ///     let mut buf = [0u8; 16];
    ///     s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    /// });
    /// ```
    pub fn scope_in<'env, const N: usize, T>(
        &'env mut self,
        slots: &mut ScopeSlots<N>,
        f: impl for<'scope> FnOnce(&'scope Scope<'scope, 'env, N>) -> T,
    ) -> T {
        run(self, slots, f)
    }
}

/// Runs `f` with a scope on `ctx` over `slots`, and drains the scope afterwards.
fn run<'env, const N: usize, T>(
    ctx: &'env mut Context,
    slots: &mut ScopeSlots<N>,
    f: impl for<'scope> FnOnce(&'scope Scope<'scope, 'env, N>) -> T,
) -> T {
    let nonce = next_nonce();
    let owner = ctx.owner();
    let scope = Scope {
        owner,
        fork: owner.fork_check(),
        nonce,
        inner: UnsafeCell::new(Inner {
            ctx,
            book: Book::new(slots, nonce),
        }),
        _scope: PhantomData,
    };
    // The guard drains the scope when `f` returns and also while unwinding from a panic in
    // `f`. It is a local of this function, so no user code can leak it.
    let _drain = DrainOnDrop(&scope);
    f(&scope)
}

impl<'scope, 'env, const N: usize> Scope<'scope, 'env, N> {
    /// Runs `f` on the scope's contents. The only way to them: every method of the scope
    /// calls it once, and `f` never calls back into the scope (the closures in this module
    /// use only `Inner`, never `self`) nor into user code, so the `&mut` it gets is the only
    /// reference to the contents while it lives.
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut Inner<'scope, 'env, N>) -> R) -> R {
        // SAFETY: `Scope` is not `Sync` (the UnsafeCell), and the user only ever holds a
        // `&Scope`, which therefore cannot leave the thread: no other thread reaches `inner`.
        // On this thread, `with` is never re-entered while `f` runs (see above), so no other
        // reference to the contents exists.
        f(unsafe { &mut *self.inner.get() })
    }

    /// The scope's contents, for methods whose closure [`Scope::with`] would not inline.
    ///
    /// # Safety
    /// The reference must be the only one to the contents while it lives: the caller takes it
    /// once, and does not call back into the scope (nor into user code, which could) while it
    /// uses it.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)] // exclusive by the contract above
    unsafe fn contents(&self) -> &mut Inner<'scope, 'env, N> {
        // SAFETY: `Scope` is not `Sync`, so only this thread reaches `inner` (see
        // `Scope::with`); the caller guarantees that no other reference to it exists.
        unsafe { &mut *self.inner.get() }
    }

    /// Number of requests submitted and not yet reaped.
    #[inline]
    pub fn in_flight(&self) -> usize {
        self.with(|inner| inner.book.in_flight())
    }

    /// Number of requests prepared and not yet submitted.
    #[inline]
    pub fn prepared(&self) -> usize {
        self.with(|inner| inner.book.prepared())
    }

    /// Number of free slots.
    #[inline]
    pub fn free_slots(&self) -> usize {
        self.with(|inner| inner.book.free())
    }

    /// Number of completions reaped and not yet handed out (the next [`Scope::wait`] hands
    /// them out without waiting).
    #[inline]
    pub(crate) fn reaped(&self) -> usize {
        self.with(|inner| inner.book.done())
    }

    /// True in a forked child that inherited this scope (see [`Context`]'s "fork"): one load
    /// on Linux 4.14 and later. Where telling costs a `getpid` this says false, and the
    /// kernel refuses the child whatever reaches it (submission, and waits, which then never
    /// read the ring); [`Scope::forked_slow`] asks `getpid` where nothing else would tell.
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        self.fork.forked()
    }

    /// [`Scope::forked`], asking `getpid` where the kernel lacks `MADV_WIPEONFORK`.
    pub(crate) fn forked_slow(&self) -> bool {
        self.owner.forked_slow()
    }

    /// Stores `request` in a free slot without submitting it; [`Scope::submit_prepared`]
    /// submits every prepared request with one `io_submit`. When all `N` slots are taken the
    /// request comes back with `EAGAIN` ([`Rejected::scope_full`]).
    ///
    /// A prepared request can be cancelled ([`Scope::cancel`]: it leaves the batch and
    /// completes with `ECANCELED`) or dropped with the rest of the batch
    /// ([`Scope::discard_prepared`]).
    ///
    /// In a forked child (which inherited the scope), every request comes back with `EINVAL`.
    #[inline(always)]
    pub fn prepare(&self, request: Request<'scope>) -> Result<Ticket, Rejected<'scope>> {
        if self.forked() {
            return Err(Rejected {
                error: Errno::INVAL,
                request,
                scope_full: false,
            });
        }
        // SAFETY: the only reference to the contents while this method runs: nothing below
        // calls back into the scope or into user code.
        let inner = unsafe { self.contents() };
        inner.book.prepare(request).map_err(|request| Rejected {
            error: Errno::AGAIN,
            request,
            scope_full: true,
        })
    }

    /// Submits every prepared request, in the order prepared, with one `io_submit` per 256
    /// requests (the pointer array lives on the stack: 2 KiB on 64-bit targets whatever `N`,
    /// so a large scope lent with [`Context::scope_in`] stays off it). On a partial submission
    /// the refused requests stay prepared, in order (submit them again after reaping, or
    /// [`Scope::discard_prepared`]), and [`SubmitError::submitted`] counts every request
    /// accepted by this call.
    #[inline(always)]
    pub fn submit_prepared(&self) -> Result<usize, SubmitError> {
        if self.forked() {
            return Err(SubmitError {
                submitted: 0,
                error: Errno::INVAL,
            });
        }
        // SAFETY: the only reference to the contents while this method runs: nothing below
        // calls back into the scope or into user code.
        let inner = unsafe { self.contents() };
        let mut total = 0;
        loop {
            let mut batch = [const { MaybeUninit::<*mut iocb>::uninit() }; SUBMIT_CHUNK];
            let n = inner.book.batch(&mut batch);
            if n == 0 {
                return Ok(total);
            }
            // SAFETY: the first `n` pointers are written (`batch`) and point to the slots'
            // iocbs, each naming a buffer (and fd, eventfd) borrowed for 'scope; the scope does
            // not end before every submitted request is reaped (`drain`), and the slots do not
            // move while it lives.
            let result = unsafe { inner.ctx.submit_raw(batch.as_mut_ptr().cast(), n) };
            match result {
                Ok(k) => {
                    inner.book.submitted(k);
                    total += k;
                    if k < n {
                        return Ok(total);
                    }
                }
                Err(e) => {
                    inner.book.submitted(e.submitted);
                    return Err(SubmitError {
                        submitted: total + e.submitted,
                        error: e.error,
                    });
                }
            }
        }
    }

    /// Drops every prepared, unsubmitted request; [`Scope::cancel`] of their tickets gives
    /// `EINVAL`.
    pub fn discard_prepared(&self) {
        self.with(|inner| inner.book.discard_prepared())
    }

    /// Submits one request with its own `io_submit`; requests prepared earlier stay prepared.
    /// When it is refused (`EAGAIN`: all `N` slots taken or the ring full; `EBADF`, `EINVAL`,
    /// ...) it comes back unsubmitted, with the kernel's reason for it.
    #[inline(always)]
    pub fn submit(&self, request: Request<'scope>) -> Result<Ticket, Rejected<'scope>> {
        if self.forked() {
            return Err(Rejected {
                error: Errno::INVAL,
                request,
                scope_full: false,
            });
        }
        // SAFETY: the only reference to the contents while this method runs: nothing below
        // calls back into the scope or into user code.
        let inner = unsafe { self.contents() };
        let ticket = inner.book.claim(request).map_err(|request| Rejected {
            error: Errno::AGAIN,
            request,
            scope_full: true,
        })?;
        let index = ticket.index();
        let mut one = [inner.book.iocb_mut(index)];
        // SAFETY: as in `submit_prepared`: the iocb names memory borrowed for 'scope, the
        // scope does not end before the request is reaped, and the slot does not move.
        match unsafe { inner.ctx.submit_raw(one.as_mut_ptr(), 1) } {
            Ok(_) => {
                inner.book.launched();
                Ok(ticket)
            }
            Err(e) => Err(Rejected {
                error: e.error,
                request: inner.book.unclaim(index),
                scope_full: false,
            }),
        }
    }

    /// Waits for at least `min` completions (or `timeout`), and returns every completion
    /// reaped so far, each with its buffer, oldest first. `EINVAL` if `min` exceeds what is in
    /// flight and ready; `EINTR` if a signal arrived first.
    ///
    /// Completions already reaped but not yet handed out (for example a request that
    /// [`Scope::cancel`] reported `Canceled`) count towards `min` without waiting; a
    /// [`Completions`] dropped before its end leaves the rest for the next wait.
    ///
    /// The scope's end waits, without a time limit, for every request still in the kernel:
    /// that is what makes lending buffers to it safe. Cancel or complete long waits first.
    ///
    /// In a forked child: `EINVAL`, and nothing is taken from the parent's ring.
    #[inline(always)]
    pub fn wait(
        &self,
        min: usize,
        timeout: Option<Duration>,
    ) -> Result<Completions<'_, 'scope, 'env, N>, Errno> {
        self.wait_inner(min, timeout, None)
    }

    /// [`Scope::wait`] with `mask` installed as the thread's signal mask for the duration of
    /// the wait, atomically (`io_pgetevents`, Linux 4.18; `ENOSYS` before): see
    /// [`Context::wait_with_sigmask`]. When `min` completions are ready (reaped earlier, or in
    /// the ring) they are handed out without a system call.
    pub fn wait_with_sigmask(
        &self,
        min: usize,
        timeout: Option<Duration>,
        mask: &SigSet,
    ) -> Result<Completions<'_, 'scope, 'env, N>, Errno> {
        self.wait_inner(min, timeout, Some(mask))
    }

    #[inline(always)]
    fn wait_inner(
        &self,
        min: usize,
        timeout: Option<Duration>,
        mask: Option<&SigSet>,
    ) -> Result<Completions<'_, 'scope, 'env, N>, Errno> {
        if self.forked() {
            return Err(Errno::INVAL);
        }
        // SAFETY: the only reference to the contents while this method runs: nothing below
        // calls back into the scope or into user code.
        let inner = unsafe { self.contents() };
        let need = min.saturating_sub(inner.book.done());
        if need > inner.book.in_flight() {
            return Err(Errno::INVAL);
        }
        if inner.book.in_flight() > 0 {
            inner.reap(need, timeout, mask)?;
        }
        Ok(Completions { scope: self })
    }

    /// Cancels the request behind `ticket`, telling apart what the kernel cannot.
    ///
    /// A prepared request that was not submitted leaves the batch: `Canceled`, and the next
    /// wait hands out its completion (`ECANCELED`, with the buffer) without waiting.
    ///
    /// `EINVAL` for a ticket of another scope, for a prepared request that was discarded
    /// ([`Scope::discard_prepared`]), and in a forked child.
    pub fn cancel(&self, ticket: Ticket) -> Result<ScopedCancel, Errno> {
        if ticket.scope != self.nonce || self.forked_slow() {
            return Err(Errno::INVAL);
        }
        self.with(|inner| {
            let index = ticket.index();
            let (address, poll) = match inner.book.lookup(ticket) {
                Lookup::Invalid => return Err(Errno::INVAL),
                Lookup::Complete => return Ok(ScopedCancel::AlreadyComplete),
                Lookup::Prepared => {
                    inner.book.cancel_prepared(index);
                    return Ok(ScopedCancel::Canceled);
                }
                Lookup::InFlight { iocb, poll } => (iocb, poll),
            };
            match inner.ctx.cancel(address)? {
                Cancel::InProgress => Ok(ScopedCancel::InProgress),
                Cancel::Canceled(event) => {
                    let raw = event.as_raw();
                    inner.book.canceled(index, raw.res, raw.res2);
                    Ok(ScopedCancel::Canceled)
                }
                Cancel::NotCanceled => {
                    let waiting = inner.ctx.completion_waiting(address as u64);
                    Ok(match (waiting, poll) {
                        (Some(true), _) | (_, true) => ScopedCancel::AlreadyComplete,
                        _ => ScopedCancel::NotCancelable,
                    })
                }
            }
        })
    }
}

impl<const N: usize> Inner<'_, '_, N> {
    /// Waits for `min` completions, matching each to its slot as it is taken from the kernel,
    /// so a completion is accounted for even if it is never handed out. The caller has checked
    /// that this process owns the context (`Scope::forked`).
    ///
    /// Inline when the ring holds enough; the system call is out of line ([`Inner::reap_rest`]).
    #[inline(always)]
    fn reap(
        &mut self,
        min: usize,
        timeout: Option<Duration>,
        mask: Option<&SigSet>,
    ) -> Result<usize, Errno> {
        let (space, mut matcher) = self.book.reaping();
        // `move`: the matcher's fields travel with the closure, not behind a pointer to this
        // frame that every store of an event could alias.
        match self
            .ctx
            .reap_ring_keeping(space, min, move |event| matcher.take(event))
        {
            Some((taken, kept)) if taken >= min => {
                self.book.queued(kept);
                Ok(kept)
            }
            seen => self.reap_rest(min, timeout, mask, seen),
        }
    }

    /// [`Inner::reap`] past the ring: `seen` is what the ring gave, if it was read. Inline
    /// too, like everything between a scope's caller and a system call (see `wait_inner`).
    #[inline]
    fn reap_rest(
        &mut self,
        min: usize,
        timeout: Option<Duration>,
        mask: Option<&SigSet>,
        seen: Option<(usize, usize)>,
    ) -> Result<usize, Errno> {
        let (space, mut matcher) = self.book.reaping_again();
        let kept = self
            .ctx
            .wait_keeping_rest(space, min, timeout, mask, seen, |event| matcher.take(event))?;
        self.book.queued(kept);
        Ok(kept)
    }
}

/// A value no earlier scope (or POSIX layer) in this process used, for the stamps of a scope's
/// requests and the owner of tickets and POSIX ids.
pub(crate) fn next_nonce() -> u64 {
    static SCOPES: AtomicU64 = AtomicU64::new(1);
    // An odd multiplier is a bijection on u64: distinct counters give distinct nonces.
    SCOPES
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The completions a [`Scope::wait`] made available, each with its buffer, oldest first.
pub struct Completions<'a, 'scope, 'env, const N: usize> {
    scope: &'a Scope<'scope, 'env, N>,
}

impl<'scope, const N: usize> Iterator for Completions<'_, 'scope, '_, N> {
    type Item = Completion<'scope>;

    #[inline(always)]
    fn next(&mut self) -> Option<Completion<'scope>> {
        // SAFETY: the only reference to the contents while this runs: `pop_done` does not call
        // back into the scope or into user code.
        unsafe { self.scope.contents() }.book.pop_done()
    }
}

/// Drains its scope when dropped: see [`Scope::drain`].
struct DrainOnDrop<'a, 'scope, 'env, const N: usize>(&'a Scope<'scope, 'env, N>);

impl<const N: usize> Drop for DrainOnDrop<'_, '_, '_, N> {
    fn drop(&mut self) {
        self.0.drain();
    }
}

impl<const N: usize> Scope<'_, '_, N> {
    /// Cancels in-flight polls, then reaps until nothing is in flight. Runs when the scope
    /// ends, normally or by unwinding; it is the reason a scope's buffers can be borrowed.
    ///
    /// In a forked child nothing is in flight for it: the requests are the parent's, and the
    /// kernel writes their data into the parent's memory, not into the child's copy. The child
    /// forgets them without touching the kernel or the parent's ring.
    fn drain(&self) {
        let forked = self.forked_slow();
        self.with(|inner| {
            inner.book.discard_prepared();
            if forked {
                inner.book.forget_in_flight();
                return;
            }
            for index in 0..N {
                let Some(address) = inner.book.in_flight_poll(index) else {
                    continue;
                };
                // Before 3.12 the event of a cancelled request comes back here and never
                // through the ring: the slot is done now, or the wait below would never end.
                if let Ok(Cancel::Canceled(event)) = inner.ctx.cancel(address) {
                    let raw = event.as_raw();
                    inner.book.canceled(index, raw.res, raw.res2);
                }
            }
            while inner.book.in_flight() > 0 {
                match inner.reap(1, None, None) {
                    Ok(_) | Err(Errno::INTR) => {}
                    // No other error is expected on a live context. Stopping would let the
                    // kernel write into buffers about to be freed, and retrying could spin for
                    // ever: io_destroy waits for every request, so the buffers are safe once it
                    // returns (and if it fails, nothing says they are: the process ends).
                    Err(_) => {
                        inner.ctx.destroy_in_place();
                        inner.book.forget_in_flight();
                    }
                }
            }
        })
    }
}
