//! The scoped API: requests whose buffers the borrow checker proves outlive the I/O.
//!
//! [`Context::scope`] lends the context to a closure together with a [`Scope`] of `N` request
//! slots that lives in `scope`'s own stack frame. Requests submitted through the scope borrow
//! their buffers for the whole scope (`'scope`), so those buffers cannot be dropped, moved or
//! touched until the scope has ended, or until the request's completion hands the buffer back.
//! Before `scope` returns, and also while unwinding from a panic, the scope cancels what can be
//! cancelled and reaps every request still in flight: the user cannot skip that by leaking
//! anything, because the scope itself is never in the user's hands, only a reference to it.

use core::cell::{Cell, RefCell};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use rustix::io::Errno;

use crate::context::{Cancel, Context, Event, SubmitError};
use crate::raw::iocb;
use crate::request::{Buffer, Request};

/// Names one request of one scope, to cancel it or to recognise its completion.
///
/// A ticket belongs to the scope that issued it: another scope (on the same context or
/// another) refuses it with `EINVAL`, and tickets of different scopes never compare equal,
/// even for the same slot and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    scope: u64,
    slot: u32,
    generation: u32,
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
    /// Cancelled, and the kernel returned the final event at once (kernels before 3.12): the
    /// next wait hands it out, with the buffer, without waiting.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Stored, waiting for `submit_prepared`.
    Prepared,
    InFlight,
    /// Reaped; its completion waits to be handed out.
    Done,
}

struct Slot<'scope> {
    /// The iocb as submitted: `aio_data` holds the scope's stamp, not the caller's value.
    cb: iocb,
    /// The caller's [`Request::user_data`], put back into the event when it is handed out.
    user_data: u64,
    buffer: Option<Buffer<'scope>>,
    state: State,
    generation: u32,
    /// The latest generation `discard_prepared` freed (0: none): its ticket never ran.
    discarded: u32,
    event: Event,
}

/// `N` request slots lent to a [`Context::scope`] closure. See the module docs.
pub struct Scope<'scope, 'env: 'scope, const N: usize> {
    ctx: RefCell<&'env mut Context>,
    // The kernel reads each slot's iocb at submit time and looks it up by address on cancel,
    // and reports that address in the completion: the slots must not move while the scope
    // lives, which holds because a Scope is only ever used by reference.
    slots: RefCell<[Slot<'scope>; N]>,
    /// How many slots are in each [`State`], indexed by `State as usize`.
    counts: [Cell<usize>; 4],
    /// No slot below this index is free (so `prepare` need not look there).
    free_hint: Cell<usize>,
    /// Distinct for every scope of the process; part of each request's stamp and ticket.
    nonce: u64,
    /// The context's owner, copied here for the fork check on every call.
    owner: crate::owner::Owner,
    events: RefCell<[Event; N]>,
    _scope: PhantomData<&'scope mut &'env ()>,
}

impl Context {
    /// Runs `f` with a [`Scope`] of `N` slots on this context, and does not return until every
    /// request submitted through the scope has completed (polls are cancelled) and been reaped.
    ///
    /// Buffers must be declared outside the closure: requests borrow them for the whole scope.
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
        let owner = self.owner();
        let scope = Scope {
            owner,
            ctx: RefCell::new(self),
            slots: RefCell::new(core::array::from_fn(|_| Slot {
                cb: iocb::default(),
                user_data: 0,
                buffer: None,
                state: State::Free,
                generation: 0,
                discarded: 0,
                event: Event::default(),
            })),
            counts: [Cell::new(N), Cell::new(0), Cell::new(0), Cell::new(0)],
            free_hint: Cell::new(0),
            nonce: next_nonce(),
            events: RefCell::new([Event::default(); N]),
            _scope: PhantomData,
        };
        // The guard drains the scope when `f` returns and also while unwinding from a panic in
        // `f`. It is a local of this function, so no user code can leak it.
        let _drain = DrainOnDrop(&scope);
        f(&scope)
    }
}

impl<'scope, 'env, const N: usize> Scope<'scope, 'env, N> {
    /// Number of requests submitted and not yet reaped.
    pub fn in_flight(&self) -> usize {
        self.count(State::InFlight)
    }

    /// Number of free slots.
    pub fn free_slots(&self) -> usize {
        self.count(State::Free)
    }

    /// Number of completions reaped and not yet handed out (the next [`Scope::wait`] hands
    /// them out without waiting).
    pub(crate) fn reaped(&self) -> usize {
        self.count(State::Done)
    }

    /// True in a forked child that inherited this scope (see [`Context`]'s "fork"): one load
    /// on Linux 4.14 and later. Where telling costs a `getpid` this says false, and the
    /// kernel refuses the child whatever reaches it (submission, and waits, which then never
    /// read the ring); [`Scope::forked_slow`] asks `getpid` where nothing else would tell.
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        self.owner.forked()
    }

    /// [`Scope::forked`], asking `getpid` where the kernel lacks `MADV_WIPEONFORK`.
    pub(crate) fn forked_slow(&self) -> bool {
        self.owner.forked_slow()
    }

    /// The `aio_data` the scope submits for slot `index` at `generation`: unique to this scope,
    /// slot and generation, so a completion is recognised by its stamp as well as its address.
    fn stamp(&self, index: usize, generation: u32) -> u64 {
        self.nonce ^ ((u64::from(generation) << 32) | index as u64)
    }

    fn count(&self, state: State) -> usize {
        self.counts[state as usize].get()
    }

    /// Moves slot `index` to `to`, keeping the per-state counts and the free-slot hint.
    fn set_state(&self, index: usize, slot: &mut Slot<'scope>, to: State) {
        let (from, to_count) = (&self.counts[slot.state as usize], &self.counts[to as usize]);
        from.set(from.get() - 1);
        to_count.set(to_count.get() + 1);
        if to == State::Free && index < self.free_hint.get() {
            self.free_hint.set(index);
        }
        slot.state = to;
    }

    /// Stores `request` in a free slot without submitting it (see [`Scope::submit_prepared`]).
    /// When all `N` slots are taken the request comes back with `EAGAIN`.
    ///
    /// In a forked child (which inherited the scope), every request comes back with `EINVAL`.
    pub fn prepare(&self, request: Request<'scope>) -> Result<Ticket, Rejected<'scope>> {
        if self.forked() {
            return Err(Rejected {
                error: Errno::INVAL,
                request,
                scope_full: false,
            });
        }
        let mut slots = self.slots.borrow_mut();
        let hint = self.free_hint.get();
        let found = if self.free_slots() == 0 {
            None
        } else {
            slots[hint..]
                .iter()
                .position(|s| s.state == State::Free)
                .map(|i| hint + i)
        };
        let Some(index) = found else {
            return Err(Rejected {
                error: Errno::AGAIN,
                request,
                scope_full: true,
            });
        };
        self.free_hint.set(index + 1);
        let slot = &mut slots[index];
        slot.cb = *request.iocb();
        slot.user_data = slot.cb.aio_data;
        slot.buffer = Some(request.into_buffer());
        self.set_state(index, slot, State::Prepared);
        slot.generation = slot.generation.wrapping_add(1);
        slot.cb.aio_data = self.stamp(index, slot.generation);
        Ok(Ticket {
            scope: self.nonce,
            slot: index as u32,
            generation: slot.generation,
        })
    }

    /// Submits every prepared request, in slot order, with one `io_submit`. On a partial
    /// submission the refused requests stay prepared (submit them again after reaping, or
    /// [`Scope::discard_prepared`]).
    pub fn submit_prepared(&self) -> Result<usize, SubmitError> {
        if self.forked() {
            return Err(SubmitError {
                submitted: 0,
                error: Errno::INVAL,
            });
        }
        let mut slots = self.slots.borrow_mut();
        let mut batch = [core::ptr::null_mut::<iocb>(); N];
        let mut order = [0usize; N];
        let (mut n, prepared) = (0, self.count(State::Prepared));
        for (i, slot) in slots.iter_mut().enumerate() {
            if n == prepared {
                break;
            }
            if slot.state == State::Prepared {
                batch[n] = &mut slot.cb;
                order[n] = i;
                n += 1;
            }
        }
        // SAFETY: each iocb names a buffer (and fd, eventfd) borrowed for 'scope, and the scope
        // does not end before every submitted request is reaped (Drop); the iocbs live in
        // slots that do not move while the scope exists.
        let result = unsafe { self.ctx.borrow().submit_raw(batch.as_mut_ptr(), n) };
        let accepted = match result {
            Ok(k) => k,
            Err(e) => e.submitted,
        };
        for &i in &order[..accepted] {
            self.set_state(i, &mut slots[i], State::InFlight);
        }
        result
    }

    /// Drops every prepared, unsubmitted request.
    pub fn discard_prepared(&self) {
        if self.count(State::Prepared) == 0 {
            return;
        }
        let mut slots = self.slots.borrow_mut();
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.state == State::Prepared {
                self.set_state(i, slot, State::Free);
                slot.buffer = None;
                slot.discarded = slot.generation;
            }
        }
    }

    /// Submits one request with its own `io_submit`; requests prepared earlier stay prepared.
    /// When it is refused (`EAGAIN`: all `N` slots taken or the ring full; `EBADF`, `EINVAL`,
    /// ...) it comes back unsubmitted, with the kernel's reason for it.
    pub fn submit(&self, request: Request<'scope>) -> Result<Ticket, Rejected<'scope>> {
        let ticket = self.prepare(request)?;
        let index = ticket.slot as usize;
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[index];
        let mut one = [&mut slot.cb as *mut iocb];
        // SAFETY: as in `submit_prepared`: the iocb names memory borrowed for 'scope, the scope
        // does not end before the request is reaped, and the slot does not move.
        match unsafe { self.ctx.borrow().submit_raw(one.as_mut_ptr(), 1) } {
            Ok(_) => {
                self.set_state(index, slot, State::InFlight);
                Ok(ticket)
            }
            Err(e) => {
                self.set_state(index, slot, State::Free);
                let buffer = slot.buffer.take().unwrap_or(Buffer::None);
                let cb = iocb {
                    aio_data: slot.user_data,
                    ..slot.cb
                };
                Err(Rejected {
                    error: e.error,
                    request: Request::from_parts(cb, buffer),
                    scope_full: false,
                })
            }
        }
    }

    /// Waits for at least `min` completions (or `timeout`), and returns every completion
    /// reaped so far, each with its buffer. `EINVAL` if `min` exceeds what is in flight and
    /// ready; `EINTR` if a signal arrived first.
    ///
    /// Completions already reaped but not yet handed out (for example a request that
    /// [`Scope::cancel`] reported `Canceled`) count towards `min` without waiting.
    ///
    /// The scope's end waits, without a time limit, for every request still in the kernel:
    /// that is what makes lending buffers to it safe. Cancel or complete long waits first.
    ///
    /// In a forked child: `EINVAL`, and nothing is taken from the parent's ring.
    pub fn wait(
        &self,
        min: usize,
        timeout: Option<Duration>,
    ) -> Result<Completions<'_, 'scope, 'env, N>, Errno> {
        if self.forked() {
            return Err(Errno::INVAL);
        }
        let need = min.saturating_sub(self.count(State::Done));
        if need > self.in_flight() {
            return Err(Errno::INVAL);
        }
        if self.in_flight() > 0 {
            self.reap(need, timeout)?;
        }
        Ok(Completions {
            scope: self,
            next: 0,
        })
    }

    /// Reaps into the slots, so a completion is accounted for even if it is never handed out.
    fn reap(&self, min: usize, timeout: Option<Duration>) -> Result<usize, Errno> {
        let mut events = self.events.borrow_mut();
        let max = self.in_flight().min(N);
        let n = self
            .ctx
            .borrow_mut()
            .wait(&mut events[..max], min, timeout)?;
        let mut slots = self.slots.borrow_mut();
        for ev in &events[..n] {
            // An event is this scope's only if both the iocb address and the stamp match: an
            // iocb address alone could be a stale request's, submitted through the unsafe API
            // from memory the scope's slots now occupy. Anything else is dropped (the unsafe
            // API's contract forbids such requests being in flight when a scope starts).
            if let Some((i, slot)) = slot_of(&mut slots[..], ev.iocb_address()) {
                if slot.state == State::InFlight && ev.user_data() == self.stamp(i, slot.generation)
                {
                    self.set_state(i, slot, State::Done);
                    slot.event = slot.restore(ev);
                }
            }
        }
        Ok(n)
    }

    /// Cancels the request behind `ticket`, telling apart what the kernel cannot.
    ///
    /// `EINVAL` for a ticket of another scope, for a prepared request that was not submitted
    /// (see [`Scope::discard_prepared`]) or was discarded since, and in a forked child.
    pub fn cancel(&self, ticket: Ticket) -> Result<ScopedCancel, Errno> {
        if ticket.scope != self.nonce || self.forked_slow() {
            return Err(Errno::INVAL);
        }
        let (address, cancelable) = {
            let slots = self.slots.borrow();
            let Some(slot) = slots.get(ticket.slot as usize) else {
                return Err(Errno::INVAL); // no scope of this one's size issued it
            };
            if slot.discarded == ticket.generation {
                return Err(Errno::INVAL); // prepared, then discarded: it never ran
            }
            if slot.generation != ticket.generation {
                return Ok(ScopedCancel::AlreadyComplete); // completed, and the slot reused
            }
            match slot.state {
                State::InFlight => {}
                State::Prepared => return Err(Errno::INVAL),
                State::Free | State::Done => return Ok(ScopedCancel::AlreadyComplete),
            }
            (
                &slot.cb as *const iocb,
                slot.cb.aio_lio_opcode == crate::raw::IOCB_CMD_POLL,
            )
        };
        let outcome = self.ctx.borrow().cancel(address)?;
        match outcome {
            Cancel::InProgress => Ok(ScopedCancel::InProgress),
            Cancel::Canceled(event) => {
                let mut slots = self.slots.borrow_mut();
                let slot = &mut slots[ticket.slot as usize];
                self.set_state(ticket.slot as usize, slot, State::Done);
                slot.event = slot.restore(&event);
                Ok(ScopedCancel::Canceled)
            }
            Cancel::NotCanceled => {
                let waiting = self.ctx.borrow_mut().completion_waiting(address as u64);
                Ok(match (waiting, cancelable) {
                    (Some(true), _) | (_, true) => ScopedCancel::AlreadyComplete,
                    _ => ScopedCancel::NotCancelable,
                })
            }
        }
    }

    fn take_done(&self, from: usize) -> Option<(usize, Completion<'scope>)> {
        if self.count(State::Done) == 0 {
            return None;
        }
        let mut slots = self.slots.borrow_mut();
        let (i, slot) = slots
            .iter_mut()
            .enumerate()
            .skip(from)
            .find(|(_, s)| s.state == State::Done)?;
        self.set_state(i, slot, State::Free);
        let completion = Completion {
            ticket: Ticket {
                scope: self.nonce,
                slot: i as u32,
                generation: slot.generation,
            },
            event: slot.event,
            buffer: slot.buffer.take().unwrap_or(Buffer::None),
        };
        Some((i, completion))
    }
}

impl Slot<'_> {
    /// `event` with the caller's user data in place of the scope's stamp.
    fn restore(&self, event: &Event) -> Event {
        Event::from_raw(crate::raw::io_event {
            data: self.user_data,
            ..*event.as_raw()
        })
    }
}

/// A value no earlier scope (or POSIX layer) in this process used, for [`Scope::stamp`] and
/// the owner of tickets and POSIX ids.
pub(crate) fn next_nonce() -> u64 {
    static SCOPES: AtomicU64 = AtomicU64::new(1);
    // An odd multiplier is a bijection on u64: distinct counters give distinct nonces.
    SCOPES
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The slot whose iocb is at `address`, found by arithmetic rather than a search: the slots
/// are one array, so slot i's iocb sits `i * size_of::<Slot>()` bytes after slot 0's.
fn slot_of<'a, 'scope>(
    slots: &'a mut [Slot<'scope>],
    address: u64,
) -> Option<(usize, &'a mut Slot<'scope>)> {
    let first = &slots.first()?.cb as *const iocb as u64;
    let index = address.checked_sub(first)? / core::mem::size_of::<Slot<'_>>() as u64;
    let index = usize::try_from(index).ok()?;
    let slot = slots.get_mut(index)?;
    (&slot.cb as *const iocb as u64 == address).then_some((index, slot))
}

/// The completions a [`Scope::wait`] made available, each with its buffer.
pub struct Completions<'a, 'scope, 'env, const N: usize> {
    scope: &'a Scope<'scope, 'env, N>,
    next: usize,
}

impl<'scope, const N: usize> Iterator for Completions<'_, 'scope, '_, N> {
    type Item = Completion<'scope>;

    fn next(&mut self) -> Option<Completion<'scope>> {
        let (i, c) = self.scope.take_done(self.next)?;
        self.next = i + 1;
        Some(c)
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
        self.discard_prepared();
        if self.forked_slow() {
            let mut slots = self.slots.borrow_mut();
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.state == State::InFlight {
                    self.set_state(i, slot, State::Free);
                }
            }
            return;
        }
        let polls: [Option<*const iocb>; N] = {
            let slots = self.slots.borrow();
            core::array::from_fn(|i| {
                let s = &slots[i];
                (s.state == State::InFlight && s.cb.aio_lio_opcode == crate::raw::IOCB_CMD_POLL)
                    .then_some(&s.cb as *const iocb)
            })
        };
        for address in polls.into_iter().flatten() {
            let _ = self.ctx.borrow().cancel(address);
        }
        while self.in_flight() > 0 {
            match self.reap(1, None) {
                Ok(_) | Err(Errno::INTR) => {}
                // No other error is expected on a live context. Stopping would let the kernel
                // write into buffers about to be freed, and retrying could spin for ever:
                // io_destroy waits for every request, so the buffers are safe once it returns.
                Err(_) => {
                    self.ctx.borrow_mut().destroy_in_place();
                    let mut slots = self.slots.borrow_mut();
                    for (i, slot) in slots.iter_mut().enumerate() {
                        if slot.state == State::InFlight {
                            self.set_state(i, slot, State::Free);
                        }
                    }
                }
            }
        }
    }
}
