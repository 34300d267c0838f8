//! A scope that several threads submit into: [`SharedScope`] (`Sync`), with one
//! [`ScopeReaper`] that takes the completions. See [`Context::shared_scope`].
//!
//! The buffer guarantee is the scoped API's: a request borrows its buffer for `'scope`, and
//! the scope does not end before every request is reaped. What changes is who touches a slot
//! when; every slot has an atomic word (its generation and state) that says it:
//!
//! - free slots are on a lock-free stack (a Treiber stack whose head carries a counter, so a
//!   slot popped and pushed back meanwhile cannot be mistaken for the old head);
//! - a submitting thread that pops a slot owns it: it writes the iocb, the user data and the
//!   buffer, publishes the slot as in flight (Release) and then calls `io_submit`; if the
//!   kernel refuses the request it takes everything back and pushes the slot again;
//! - the reaper owns a slot from the moment it matches the slot's completion (Acquire on the
//!   word: the submitter's writes are visible) until it hands the completion out and pushes
//!   the slot (Release: its own writes are visible to the next submitter);
//! - cancellation is the reaper's: only the reaper frees slots, so a slot it sees in flight
//!   stays that request's while it calls `io_cancel` on its address.
//!
//! The ordering between a submitter's publication and the reaper's sight of the completion
//! goes through the kernel: the kernel reads the iocb during `io_submit`, which the submitter
//! calls after publishing, and the completion the reaper reads carries the iocb's own
//! `aio_data`, copied by the kernel; the kernel's synchronisation that makes that value right
//! makes the earlier publication visible too. The reaper still never trusts it blindly: a
//! completion whose slot does not (yet) read as in flight at the completion's generation is
//! waited for only while the slot reads as the generation before it (the publication on its
//! way), and dropped otherwise.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use core::time::Duration;

use rustix::io::Errno;

use super::{next_nonce, Completion, Rejected, ScopedCancel, Ticket};
use crate::context::{Cancel, Context, Event, Reaper, SigSet, Submitter};
use crate::owner::{ForkCheck, Owner};
use crate::raw::{io_event, iocb, IOCB_CMD_POLL};
use crate::request::{Buffer, Request};

/// End of the free stack.
const NONE: u32 = u32::MAX;

/// The states in the low byte of a slot's word; the generation is above it.
const FREE: u64 = 0;
const IN_FLIGHT: u64 = 1;
const DONE: u64 = 2;

fn word(generation: u32, state: u64) -> u64 {
    (u64::from(generation) << 8) | state
}

/// A lifetime-invariant marker (in argument and return position of a function pointer).
type Invariant<'a> = fn(&'a ()) -> &'a ();

/// One request's place.
struct SharedSlot {
    /// The iocb as submitted (its `aio_data` is the stamp); written by the slot's owner.
    cb: UnsafeCell<iocb>,
    /// The caller's user data and the buffer (lifetime erased), likewise.
    user_data: UnsafeCell<u64>,
    buffer: UnsafeCell<Buffer<'static>>,
    /// `generation << 8 | state`.
    word: AtomicU64,
}

/// The free slots: a Treiber stack of slot indices whose head carries a counter, bumped by
/// every push and pop, so that a thread holding a stale head (its slot popped and pushed back
/// meanwhile, with another `next`) fails its exchange instead of corrupting the stack.
/// Pushing publishes (Release) what the pusher wrote to the slot; popping acquires it.
struct FreeStack<const N: usize> {
    /// `counter << 32 | index` of the top slot (`NONE`: empty).
    head: AtomicU64,
    /// Per slot: the slot below it on the stack.
    next: [AtomicU32; N],
}

impl<const N: usize> FreeStack<N> {
    /// Every slot free, 0 on top.
    fn full() -> FreeStack<N> {
        FreeStack {
            head: AtomicU64::new(if N > 0 { 0 } else { u64::from(NONE) }),
            next: core::array::from_fn(|i| {
                AtomicU32::new(if i + 1 < N { i as u32 + 1 } else { NONE })
            }),
        }
    }

    #[inline]
    fn pop(&self) -> Option<usize> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let index = head as u32;
            let next = self.next.get(index as usize)?; // NONE: empty
                                                       // Possibly stale if another thread pops this slot meanwhile; then the counter in
                                                       // `head` has moved on and the exchange fails.
            let below = next.load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(below);
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(index as usize),
                Err(now) => head = now,
            }
        }
    }

    #[inline]
    fn push(&self, index: usize) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            self.next[index].store(head as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | index as u64;
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
}

/// What only the reaper touches: the context's reaping half and the done queue
/// (`events[head..tail]`, as in a [`Scope`](super::Scope)).
struct ReaperState<'env, const N: usize> {
    reaper: Reaper<'env>,
    events: [Event; N],
    head: usize,
    tail: usize,
}

/// `N` request slots that any number of threads submit into, lent to a
/// [`Context::shared_scope`] closure together with the one [`ScopeReaper`].
///
/// `Sync`: share `&SharedScope` with threads (`std::thread::scope`); every thread that can
/// reach it has ended before the scope does, since it cannot outlive the closure.
pub struct SharedScope<'scope, 'env: 'scope, const N: usize> {
    submitter: Submitter<'env>,
    slots: [SharedSlot; N],
    free: FreeStack<N>,
    /// Two counts in one word, so that the reaper reads them together: the low 32 bits are
    /// the requests published as in flight (counted before `io_submit`) and not yet reaped,
    /// the high 32 bits those of them whose `io_submit` has not returned yet, which the kernel
    /// may still refuse ([`SharedScope::counts`]).
    in_flight: AtomicU64,
    nonce: u64,
    owner: Owner,
    fork: ForkCheck,
    reaper: UnsafeCell<ReaperState<'env, N>>,
    /// Invariant in `'scope` (nothing else here mentions it, and a covariant `'scope` would
    /// let a shorter-lived buffer in: the compile_fail example on `shared_scope` checks it).
    _scope: PhantomData<(Invariant<'scope>, &'env ())>,
}

// SAFETY: the slots' cells are accessed only by the slot's current owner (see the module
// docs: the free stack and the slot's word hand a slot from one thread to the next with
// Acquire/Release), and they hold buffers (`Buffer: Send`) that move with the slot; the
// reaper's state is reached only through the one `ScopeReaper` (`&mut self`) and, after every
// thread that could hold a reference has ended, by the scope's end.
unsafe impl<const N: usize> Sync for SharedScope<'_, '_, N> {}

/// The `SUBMITTING` unit of [`SharedScope::in_flight`]'s high half.
const SUBMITTING: u64 = 1 << 32;

/// How long a reaper waits at a time while a request it may need is still being submitted.
const REFUSAL_SLICE: Duration = Duration::from_millis(1);

/// The monotonic clock, as a duration since its epoch (the POSIX layer's timeouts use it too).
pub(crate) fn now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The one reaper of a [`SharedScope`]: waits, hands out completions, cancels. It can be
/// moved to another thread, but there is only ever one.
pub struct ScopeReaper<'a, 'scope, 'env, const N: usize> {
    scope: &'a SharedScope<'scope, 'env, N>,
}

/// The completions a [`ScopeReaper::wait`] made available, each with its buffer, oldest first.
pub struct SharedCompletions<'r, 'a, 'scope, 'env, const N: usize> {
    reaper: &'r mut ScopeReaper<'a, 'scope, 'env, N>,
}

static_assertions::assert_impl_all!(SharedScope<'static, 'static, 4>: Sync, Send);
static_assertions::assert_impl_all!(ScopeReaper<'static, 'static, 'static, 4>: Send);
static_assertions::assert_not_impl_any!(ScopeReaper<'static, 'static, 'static, 4>: Clone);

impl Context {
    /// [`Context::scope`] for submission from several threads: `f` gets a [`SharedScope`],
    /// which is `Sync` (hand `&SharedScope` to threads, typically with `std::thread::scope`)
    /// and the scope's only [`ScopeReaper`], which takes the completions. Buffers are lent
    /// exactly as to a [`Scope`](super::Scope): declared before the scope, borrowed until the
    /// scope has ended or a completion hands them back, and `shared_scope` does not return
    /// until every request has completed (polls cancelled) and been reaped, also when
    /// unwinding from a panic.
    ///
    /// The slots (about 150 bytes each in an optimised build; an unoptimised one can need
    /// twice that, as it copies the array) are in this function's stack frame: there is no
    /// `shared_scope_in` yet, so a very large shared scope wants a thread with a stack to
    /// match.
    ///
    /// ```
    /// use linux_aio::{Context, Request};
    /// use std::os::fd::AsFd;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # if let Err(rustix::io::Errno::NOSYS) = Context::new(1) { return Ok(()) }
    /// let file = std::fs::File::open("Cargo.toml")?;
    /// let mut ctx = Context::new(16)?;
    /// let mut bufs = [[0u8; 9]; 4];
    /// let total = ctx.shared_scope::<4, _>(|s, mut reaper| {
    ///     std::thread::scope(|t| {
    ///         for (i, buf) in bufs.iter_mut().enumerate() {
    ///             let fd = file.as_fd();
    ///             t.spawn(move || s.submit(Request::read(fd, buf, 0).user_data(i as u64)).unwrap());
    ///         }
    ///     });
    ///     let mut total = 0;
    ///     while total < 4 * 9 {
    ///         for done in reaper.wait(1, None).unwrap() {
    ///             total += done.event.result().unwrap();
    ///         }
    ///     }
    ///     total
    /// });
    /// assert_eq!(total, 36);
    /// assert!(bufs.iter().all(|b| b == b"[package]"));
    /// # Ok(()) }
    /// ```
    ///
    /// A buffer a thread declares itself does not live long enough:
    ///
    /// ```compile_fail,E0597
    /// # use linux_aio::{Context, Request};
    /// # use std::os::fd::AsFd;
    /// # let file = std::fs::File::open("Cargo.toml").unwrap();
    /// # let mut ctx = Context::new(8).unwrap();
    /// ctx.shared_scope::<4, _>(|s, _reaper| {
    ///     std::thread::scope(|t| {
    ///         t.spawn(|| {
    ///             let mut buf = [0u8; 16];
    ///             s.submit(Request::read(file.as_fd(), &mut buf, 0)).unwrap();
    ///         });
    ///     });
    /// });
    /// ```
    pub fn shared_scope<'env, const N: usize, T>(
        &'env mut self,
        f: impl for<'scope> FnOnce(
            &'scope SharedScope<'scope, 'env, N>,
            ScopeReaper<'scope, 'scope, 'env, N>,
        ) -> T,
    ) -> T {
        const { assert!(N < NONE as usize, "a scope has fewer than u32::MAX slots") };
        let owner = self.owner();
        let nonce = next_nonce();
        let (submitter, reaper) = self.split();
        let scope = SharedScope {
            submitter,
            slots: core::array::from_fn(|i| SharedSlot {
                cb: UnsafeCell::new(iocb {
                    aio_data: nonce.wrapping_add(i as u64),
                    ..iocb::default()
                }),
                user_data: UnsafeCell::new(0),
                buffer: UnsafeCell::new(Buffer::None),
                word: AtomicU64::new(word(0, FREE)),
            }),
            free: FreeStack::full(),
            in_flight: AtomicU64::new(0),
            nonce,
            owner,
            fork: owner.fork_check(),
            reaper: UnsafeCell::new(ReaperState {
                reaper,
                events: [Event::default(); N],
                head: 0,
                tail: 0,
            }),
            _scope: PhantomData,
        };
        // As in `Context::scope`: a local guard no user code can leak.
        let _drain = SharedDrain(&scope);
        f(&scope, ScopeReaper { scope: &scope })
    }
}

impl<'scope, 'env, const N: usize> SharedScope<'scope, 'env, N> {
    /// Submits one request with its own `io_submit`, from any thread. When it is refused
    /// (`EAGAIN`: all `N` slots taken, [`Rejected::scope_full`], or the ring full; `EBADF`,
    /// `EINVAL`, ...) it comes back unsubmitted, with the reason; `EINVAL` in a forked child.
    #[inline(always)]
    pub fn submit(&self, request: Request<'scope>) -> Result<Ticket, Rejected<'scope>> {
        if self.fork.forked() {
            return Err(Rejected {
                error: Errno::INVAL,
                request,
                scope_full: false,
            });
        }
        let Some(index) = self.pop_free() else {
            return Err(Rejected {
                error: Errno::AGAIN,
                request,
                scope_full: true,
            });
        };
        let slot = &self.slots[index];
        let generation = (slot.word.load(Ordering::Relaxed) >> 8) as u32;
        let generation = generation.wrapping_add(1);
        let stamp = self
            .nonce
            .wrapping_add((u64::from(generation) << 32) | index as u64);
        let (cb, buffer) = request.into_parts();
        // SAFETY: this thread popped the slot from the free stack (Acquire), so it owns the
        // cells until it publishes the slot below: nobody else reads or writes them.
        unsafe {
            *slot.user_data.get() = cb.aio_data;
            *slot.cb.get() = iocb {
                aio_data: stamp,
                ..cb
            };
            *slot.buffer.get() = super::slots::erase(buffer);
        }
        slot.word
            .store(word(generation, IN_FLIGHT), Ordering::Release);
        // Counted before the kernel can complete it (the reaper never finds more completions
        // than the count), and marked as being submitted until io_submit returns.
        self.in_flight.fetch_add(1 | SUBMITTING, Ordering::AcqRel);
        let mut one = [slot.cb.get()];
        // SAFETY: the iocb names memory borrowed for 'scope; the scope does not end before
        // the request is reaped (its end runs after every thread that could submit has
        // ended, and waits for what is in flight), and the slot does not move.
        match unsafe { self.submitter.submit_raw(one.as_mut_ptr(), 1) } {
            Ok(_) => {
                self.in_flight.fetch_sub(SUBMITTING, Ordering::AcqRel);
                Ok(Ticket {
                    scope: self.nonce,
                    stamp,
                })
            }
            Err(e) => {
                // No completion will come: the slot is still this thread's.
                slot.word.store(word(generation, FREE), Ordering::Relaxed);
                self.in_flight.fetch_sub(1 | SUBMITTING, Ordering::AcqRel);
                // SAFETY: as above: the kernel refused the request, so nobody else looks at
                // the slot before it goes back on the free stack below.
                let (cb, buffer) = unsafe {
                    (
                        iocb {
                            aio_data: *slot.user_data.get(),
                            ..*slot.cb.get()
                        },
                        core::mem::replace(&mut *slot.buffer.get(), Buffer::None),
                    )
                };
                self.push_free(index);
                Err(Rejected {
                    error: e.error,
                    // SAFETY: stored above by this thread from a Buffer<'scope>.
                    request: Request::from_parts(cb, unsafe { restore(buffer) }),
                    scope_full: false,
                })
            }
        }
    }

    /// Requests submitted (or being submitted) and not yet reaped: a moment's snapshot while
    /// threads submit.
    pub fn in_flight(&self) -> usize {
        self.counts().0
    }

    /// (requests in flight or being submitted, those of them being submitted): one snapshot.
    /// At least `first - second` (saturating: the reaper may take the completion of a request
    /// whose `submit` has not returned yet) are in the kernel, unreaped.
    #[inline]
    fn counts(&self) -> (usize, usize) {
        let word = self.in_flight.load(Ordering::Acquire);
        ((word as u32) as usize, (word >> 32) as usize)
    }

    #[inline]
    fn pop_free(&self) -> Option<usize> {
        self.free.pop()
    }

    #[inline]
    fn push_free(&self, index: usize) {
        self.free.push(index)
    }

    /// The reaper's state.
    ///
    /// # Safety
    /// Only the one `ScopeReaper` (through `&mut self`) and the scope's end call it, and
    /// never while another reference from it lives.
    #[allow(clippy::mut_from_ref)] // exclusive by the contract above
    unsafe fn reaper_state(&self) -> &mut ReaperState<'env, N> {
        // SAFETY: forwarded to the caller.
        unsafe { &mut *self.reaper.get() }
    }

    /// True if `event` completes an in-flight request of this scope, whose slot it marks done.
    #[inline]
    fn take(&self, event: &io_event) -> bool {
        let x = event.data.wrapping_sub(self.nonce);
        let (index, generation) = (x as u32 as usize, (x >> 32) as u32);
        let Some(slot) = self.slots.get(index) else {
            return false;
        };
        if address_of(slot) != event.obj {
            return false;
        }
        // The stamp is `nonce + x` by construction, so (index, generation) is the whole of
        // it: the slot's word says whether that request is in flight.
        let expected = word(generation, IN_FLIGHT);
        let mut now = slot.word.load(Ordering::Acquire);
        // Published before the io_submit that made the event: only its visibility can lag
        // (see the module docs), while the slot still reads as free at the generation
        // before. Bounded, so that a forged event for a free slot is dropped in the end.
        let mut spins = 0u32;
        while now == word(generation.wrapping_sub(1), FREE) && spins < 1 << 20 {
            core::hint::spin_loop();
            now = slot.word.load(Ordering::Acquire);
            spins += 1;
        }
        if now != expected {
            return false;
        }
        // The Acquire load saw the submitter's publication: the reaper owns the slot now.
        slot.word.store(word(generation, DONE), Ordering::Relaxed);
        true
    }

    /// Queues the completion of the in-flight slot `index` (not from the ring).
    fn push_done(&self, state: &mut ReaperState<'env, N>, index: usize, res: i64, res2: i64) {
        let slot = &self.slots[index];
        let generation = (slot.word.load(Ordering::Relaxed) >> 8) as u32;
        slot.word.store(word(generation, DONE), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        make_room(state, 1);
        // SAFETY: the reaper owns an in-flight slot's cells for reading (see `take`).
        let data = unsafe { (*slot.cb.get()).aio_data };
        if let Some(entry) = state.events.get_mut(state.tail) {
            *entry = Event::from_raw(io_event {
                data,
                obj: address_of(slot),
                res,
                res2,
            });
            state.tail += 1;
        }
    }

    /// Waits (as the reaper) for `min` completions; the caller checked the fork.
    #[inline(always)]
    fn reap(
        &self,
        state: &mut ReaperState<'env, N>,
        min: usize,
        timeout: Option<Duration>,
        mask: Option<&SigSet>,
    ) -> Result<usize, Errno> {
        let in_flight = self.in_flight().min(N);
        make_room(state, in_flight);
        let end = (state.tail + in_flight).min(N);
        let space = &mut state.events[state.tail..end];
        let min = min.min(space.len());
        let ctx = state.reaper.context();
        let kept = match ctx.reap_ring_keeping(space, min, |e| self.take(e)) {
            Some((taken, kept)) if taken >= min => kept,
            seen => ctx.wait_keeping_rest(space, min, timeout, mask, seen, |e| self.take(e))?,
        };
        state.tail += kept;
        self.in_flight.fetch_sub(kept as u64, Ordering::AcqRel);
        Ok(kept)
    }

    /// The oldest completion not yet handed out; its slot goes back on the free stack.
    #[inline]
    fn pop_done(&self, state: &mut ReaperState<'env, N>) -> Option<Completion<'scope>> {
        let event = *state.events.get(state.head..state.tail)?.first()?.as_raw();
        state.head += 1;
        let x = event.data.wrapping_sub(self.nonce);
        let (index, generation) = (x as u32 as usize, (x >> 32) as u32);
        let slot = self.slots.get(index)?;
        // SAFETY: the slot is done, so the reaper owns it (see `take`) until `push_free`.
        let (user_data, buffer) = unsafe {
            (
                *slot.user_data.get(),
                core::mem::replace(&mut *slot.buffer.get(), Buffer::None),
            )
        };
        slot.word.store(word(generation, FREE), Ordering::Relaxed);
        self.push_free(index);
        Some(Completion {
            ticket: Ticket {
                scope: self.nonce,
                stamp: event.data,
            },
            event: Event::from_raw(io_event {
                data: user_data,
                ..event
            }),
            // SAFETY: stored by a submitter from a Buffer<'scope>.
            buffer: unsafe { restore(buffer) },
        })
    }
}

/// Room for `extra` more events after the done queue (see `Book::make_room`).
fn make_room<const N: usize>(state: &mut ReaperState<'_, N>, extra: usize) {
    if state.head == state.tail {
        state.head = 0;
        state.tail = 0;
    } else if N - state.tail < extra {
        state.events.copy_within(state.head..state.tail, 0);
        state.tail -= state.head;
        state.head = 0;
    }
}

/// The address the kernel reports for a request submitted from `slot`.
fn address_of(slot: &SharedSlot) -> u64 {
    slot.cb.get() as u64
}

/// A buffer erased by a submitter of the scope, with the scope's lifetime.
///
/// # Safety
/// `buffer` was a `Buffer<'scope>` when a submitter stored it.
unsafe fn restore<'scope>(buffer: Buffer<'static>) -> Buffer<'scope> {
    // SAFETY: forwarded to the caller: this is the borrow the scope was lent.
    unsafe { core::mem::transmute::<Buffer<'static>, Buffer<'scope>>(buffer) }
}

impl<'a, 'scope, 'env, const N: usize> ScopeReaper<'a, 'scope, 'env, N> {
    /// [`Scope::wait`](super::Scope::wait), for the shared scope: waits for at least `min`
    /// completions (or `timeout`) and returns every completion reaped so far, oldest first.
    /// `EINVAL` if `min` exceeds what is in flight and ready at the time of the call (so a
    /// reaper that may run ahead of the submitters should pass a timeout or ask for 0).
    #[inline(always)]
    pub fn wait(
        &mut self,
        min: usize,
        timeout: Option<Duration>,
    ) -> Result<SharedCompletions<'_, 'a, 'scope, 'env, N>, Errno> {
        self.wait_inner(min, timeout, None)
    }

    /// [`ScopeReaper::wait`] with `mask` as the signal mask for the duration of the wait
    /// (`io_pgetevents`), as [`Scope::wait_with_sigmask`](super::Scope::wait_with_sigmask).
    pub fn wait_with_sigmask(
        &mut self,
        min: usize,
        timeout: Option<Duration>,
        mask: &SigSet,
    ) -> Result<SharedCompletions<'_, 'a, 'scope, 'env, N>, Errno> {
        self.wait_inner(min, timeout, Some(mask))
    }

    #[inline(always)]
    fn wait_inner(
        &mut self,
        min: usize,
        timeout: Option<Duration>,
        mask: Option<&SigSet>,
    ) -> Result<SharedCompletions<'_, 'a, 'scope, 'env, N>, Errno> {
        let scope = self.scope;
        if scope.fork.forked() {
            return Err(Errno::INVAL);
        }
        // SAFETY: the one reaper, through `&mut self`; the reference ends with this block.
        let state = unsafe { scope.reaper_state() };
        let mut remaining = timeout;
        loop {
            let need = min.saturating_sub(state.tail - state.head);
            let (in_flight, submitting) = scope.counts();
            if need > in_flight {
                return Err(Errno::INVAL);
            }
            if in_flight == 0 {
                break;
            }
            if need <= in_flight.saturating_sub(submitting) {
                // That many are in the kernel: the wait ends (or times out) by itself.
                scope.reap(state, need, remaining, mask)?;
                break;
            }
            // Some of what the wait needs is still being submitted, and the kernel may yet
            // refuse it, after which nothing would end a wait for it: wait in slices, and
            // count again between them.
            let slice = remaining.map_or(REFUSAL_SLICE, |r| r.min(REFUSAL_SLICE));
            let started = now();
            scope.reap(state, need, Some(slice), mask)?;
            if let Some(r) = remaining.as_mut() {
                *r = r.saturating_sub(now().saturating_sub(started));
                if r.is_zero() {
                    break;
                }
            }
        }
        Ok(SharedCompletions { reaper: self })
    }

    /// [`Scope::cancel`](super::Scope::cancel) for the shared scope. Cancellation is the
    /// reaper's: only the reaper frees slots, so a request it sees in flight is still the one
    /// `ticket` names when it asks the kernel.
    pub fn cancel(&mut self, ticket: Ticket) -> Result<ScopedCancel, Errno> {
        let scope = self.scope;
        if ticket.scope != scope.nonce || scope.owner.forked_slow() {
            return Err(Errno::INVAL);
        }
        let x = ticket.stamp.wrapping_sub(scope.nonce);
        let (index, generation) = (x as u32 as usize, (x >> 32) as u32);
        let Some(slot) = scope.slots.get(index) else {
            return Err(Errno::INVAL);
        };
        if slot.word.load(Ordering::Acquire) != word(generation, IN_FLIGHT) {
            // Done, handed out, or the slot moved on; a ticket is only issued once its
            // request is in flight.
            return Ok(ScopedCancel::AlreadyComplete);
        }
        // SAFETY: in flight, so no submitter writes the cells, and only this reaper can move
        // the slot on; the one reaper, through `&mut self`.
        let (poll, state) = unsafe {
            (
                (*slot.cb.get()).aio_lio_opcode == IOCB_CMD_POLL,
                scope.reaper_state(),
            )
        };
        let address = slot.cb.get().cast_const();
        match state.reaper.context().cancel(address)? {
            Cancel::InProgress => Ok(ScopedCancel::InProgress),
            Cancel::Canceled(event) => {
                let raw = event.as_raw();
                scope.push_done(state, index, raw.res, raw.res2);
                Ok(ScopedCancel::Canceled)
            }
            Cancel::NotCanceled => {
                let waiting = state.reaper.context().completion_waiting(address as u64);
                Ok(match (waiting, poll) {
                    (Some(true), _) | (_, true) => ScopedCancel::AlreadyComplete,
                    _ => ScopedCancel::NotCancelable,
                })
            }
        }
    }
}

impl<'scope, const N: usize> Iterator for SharedCompletions<'_, '_, 'scope, '_, N> {
    type Item = Completion<'scope>;

    #[inline(always)]
    fn next(&mut self) -> Option<Completion<'scope>> {
        let scope = self.reaper.scope;
        // SAFETY: the one reaper, borrowed mutably by this iterator.
        scope.pop_done(unsafe { scope.reaper_state() })
    }
}

/// Drains a shared scope when dropped (see [`SharedScope::drain`]).
struct SharedDrain<'a, 'scope, 'env, const N: usize>(&'a SharedScope<'scope, 'env, N>);

impl<const N: usize> Drop for SharedDrain<'_, '_, '_, N> {
    fn drop(&mut self) {
        self.0.drain();
    }
}

impl<const N: usize> SharedScope<'_, '_, N> {
    /// As `Scope::drain`: cancels in-flight polls and reaps until nothing is in flight. It
    /// runs after `f` has returned (or unwound), when no thread can reach the scope any more
    /// (they could not outlive the closure), so it has the scope to itself.
    fn drain(&self) {
        // SAFETY: see above: no reaper or submitter is left.
        let state = unsafe { self.reaper_state() };
        let in_flight = |s: &SharedSlot| s.word.load(Ordering::Relaxed) & 0xff == IN_FLIGHT;
        if self.owner.forked_slow() {
            // The requests are the parent's (see `Scope::drain`).
            for slot in self.slots.iter().filter(|s| in_flight(s)) {
                let generation = (slot.word.load(Ordering::Relaxed) >> 8) as u32;
                slot.word.store(word(generation, FREE), Ordering::Relaxed);
                // SAFETY: no other thread is left.
                unsafe { *slot.buffer.get() = Buffer::None };
            }
            self.in_flight.store(0, Ordering::Relaxed);
            return;
        }
        for (index, slot) in self.slots.iter().enumerate() {
            // SAFETY: no other thread is left; an in-flight slot's iocb is written.
            if !in_flight(slot) || unsafe { (*slot.cb.get()).aio_lio_opcode } != IOCB_CMD_POLL {
                continue;
            }
            // Before 3.12 the event comes back here, never through the ring (`Scope::drain`).
            if let Ok(Cancel::Canceled(event)) =
                state.reaper.context().cancel(slot.cb.get().cast_const())
            {
                let raw = event.as_raw();
                self.push_done(state, index, raw.res, raw.res2);
            }
        }
        while self.in_flight() > 0 {
            match self.reap(state, 1, None, None) {
                Ok(_) | Err(Errno::INTR) => {}
                // As in `Scope::drain`: io_destroy waits for every request.
                Err(_) => {
                    state.reaper.context().destroy_in_place();
                    for slot in self.slots.iter().filter(|s| in_flight(s)) {
                        let generation = (slot.word.load(Ordering::Relaxed) >> 8) as u32;
                        slot.word.store(word(generation, FREE), Ordering::Relaxed);
                    }
                    self.in_flight.store(0, Ordering::Relaxed);
                }
            }
            // Completions are dropped as they come: their buffers' borrows end with the scope.
            while self.pop_done(state).is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! The free stack alone, under Miri too: threads racing pops and pushes never hand one
    //! slot to two owners, and lose none. (The ABA case the head's counter is for needs a
    //! thread preempted between its load and its exchange while others pop and push the same
    //! slots; these runs do not reliably produce it, so the counter rests on its argument.)

    extern crate std;
    use super::*;
    use core::sync::atomic::AtomicUsize;
    use std::vec::Vec;

    #[test]
    fn free_stack_order_and_empty() {
        let s = FreeStack::<3>::full();
        assert_eq!(
            (s.pop(), s.pop(), s.pop(), s.pop()),
            (Some(0), Some(1), Some(2), None)
        );
        s.push(1);
        s.push(2);
        assert_eq!((s.pop(), s.pop(), s.pop()), (Some(2), Some(1), None));
        let none = FreeStack::<0>::full();
        assert_eq!(none.pop(), None);
    }

    #[test]
    fn free_stack_racing_threads_share_nothing() {
        const N: usize = 8;
        let stack = FreeStack::<N>::full();
        let owners: [AtomicUsize; N] = core::array::from_fn(|_| AtomicUsize::new(0));
        let rounds = if cfg!(miri) { 30 } else { 20_000 };
        std::thread::scope(|t| {
            for _ in 0..3 {
                t.spawn(|| {
                    let mut held = Vec::new();
                    for r in 0..rounds {
                        if r % 3 != 2 {
                            if let Some(i) = stack.pop() {
                                // Nobody else may hold the slot now.
                                assert_eq!(owners[i].fetch_add(1, Ordering::SeqCst), 0);
                                held.push(i);
                            }
                        } else if let Some(i) = held.pop() {
                            owners[i].fetch_sub(1, Ordering::SeqCst);
                            stack.push(i);
                        }
                    }
                    for i in held {
                        owners[i].fetch_sub(1, Ordering::SeqCst);
                        stack.push(i);
                    }
                });
            }
        });
        let mut all: Vec<usize> = core::iter::from_fn(|| stack.pop()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..N).collect::<Vec<_>>(), "a slot lost or duplicated");
    }
}
