//! A scope's slots: the storage ([`ScopeSlots`], on `Context::scope`'s stack or lent by the
//! caller to `Context::scope_in`) and the bookkeeping over it ([`Book`]), every operation O(1)
//! per request:
//!
//! - free slots form a singly linked list through [`Slot::next`] (last freed, first reused);
//! - prepared slots are listed in preparation order in `prepared`, which becomes the
//!   `io_submit` batch;
//! - reaped slots form a FIFO, linked through the same field, that completions are handed out
//!   from;
//! - a completion finds its slot from its stamp: `aio_data` is `nonce + (generation << 32 |
//!   index)` (wrapping), so the index is one subtraction away (no search, no division), and the
//!   slot is its only if the stamp, the slot's state and the iocb address all match. The
//!   stamp doubles as the slot's generation record: the next request's stamp is the last one
//!   plus `1 << 32`, and a ticket is the scope's nonce and the stamp.
//!
//! No system calls here, so Miri checks all of it (`cargo +nightly miri test --lib scope`).

use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::context::Event;
use crate::raw::{io_event, iocb, IOCB_CMD_POLL};
use crate::request::{Buffer, Request};

use super::{Completion, Ticket};

/// End of a list.
const NONE: u32 = u32::MAX;

/// `-ECANCELED`, the result of a prepared request cancelled before submission.
const ECANCELED: i64 = -125;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    Free,
    /// Prepared (listed in the batch), in the kernel, or claimed for a moment by a method
    /// that is submitting it alone.
    Busy,
    /// Reaped (or cancelled before submission); its completion waits in the done queue.
    Done,
}

/// One request's place: 112 bytes on 64-bit targets, the iocb first.
#[repr(C)]
pub(crate) struct Slot {
    /// The iocb as submitted. Its `aio_data` holds the stamp of the slot's latest request
    /// (the generation 0 stamp before the first), not the caller's value.
    cb: iocb,
    /// The caller's [`Request::user_data`], put back into the event when it is handed out.
    user_data: u64,
    /// The request's buffer, its lifetime erased (see [`Book`]).
    buffer: Buffer<'static>,
    /// The stamp of the latest request `discard_prepared` freed (or [`Book::no_stamp`]):
    /// its ticket never ran.
    discarded: u64,
    /// The next slot of the free list.
    next: u32,
    state: State,
}

/// Storage for a scope of `N` slots: 148 bytes per slot on 64-bit targets, 136-140 on 32-bit
/// ones (the iocb, an event, the request's buffer and bookkeeping).
///
/// [`Context::scope`](crate::Context::scope) keeps one in its own stack frame.
/// [`Context::scope_in`](crate::Context::scope_in) borrows one from the caller instead, so that
/// a large scope can live in a `static`, in a `Box`, or anywhere else off the stack, and be
/// reused by scope after scope. Every scope starts by resetting the storage, so its previous
/// contents never matter: any bytes at all, even uninitialised memory, are a valid
/// `ScopeSlots` ([`ScopeSlots::from_uninit`]), and [`ScopeSlots::new`] costs nothing.
///
/// ```
/// use linux_aio::{Context, Request, ScopeSlots};
/// use std::os::fd::AsFd;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # if let Err(rustix::io::Errno::NOSYS) = Context::new(1) { return Ok(()) }
/// // 1024 slots (148 KiB on 64-bit targets) on the heap, without first building them on the stack.
/// let mut place = Box::<ScopeSlots<1024>>::new_uninit();
/// let slots = ScopeSlots::from_uninit(&mut place);
/// let file = std::fs::File::open("Cargo.toml")?;
/// let mut ctx = Context::new(8)?;
/// let mut buf = [0u8; 9];
/// let n = ctx.scope_in(slots, |s| -> Result<usize, rustix::io::Errno> {
///     s.submit(Request::read(file.as_fd(), &mut buf, 0))?;
///     s.wait(1, None)?.next().unwrap().event.result()
/// })?;
/// assert_eq!((n, &buf), (9, b"[package]"));
/// # Ok(()) }
/// ```
pub struct ScopeSlots<const N: usize> {
    slots: [MaybeUninit<Slot>; N],
    /// Where waits put the kernel's events before they are matched to slots.
    events: [MaybeUninit<Event>; N],
    /// The prepared batch: slot indices, in the order prepared.
    prepared: [MaybeUninit<u32>; N],
}

impl<const N: usize> ScopeSlots<N> {
    /// Storage for `N` slots. Nothing is written until a scope starts on it.
    pub const fn new() -> ScopeSlots<N> {
        ScopeSlots {
            slots: [const { MaybeUninit::uninit() }; N],
            events: [const { MaybeUninit::uninit() }; N],
            prepared: [const { MaybeUninit::uninit() }; N],
        }
    }

    /// The storage in `place`, which need not be initialised: every field of a `ScopeSlots`
    /// is written by the scope before it is read. For `Box::new_uninit`, `static` cells and
    /// other places that must not take the storage by value.
    pub fn from_uninit(place: &mut MaybeUninit<ScopeSlots<N>>) -> &mut ScopeSlots<N> {
        // SAFETY: ScopeSlots consists of MaybeUninit arrays only, for which any contents,
        // initialised or not, are valid.
        unsafe { place.assume_init_mut() }
    }
}

impl<const N: usize> Default for ScopeSlots<N> {
    fn default() -> ScopeSlots<N> {
        ScopeSlots::new()
    }
}

impl<const N: usize> core::fmt::Debug for ScopeSlots<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ScopeSlots<{N}>")
    }
}

/// The address the kernel reports for a request submitted from `cb` (`io_event::obj`).
#[inline]
pub(crate) fn address(cb: &iocb) -> u64 {
    cb as *const iocb as u64
}

/// `buffer` with its lifetime erased, for storage in a slot.
#[inline]
pub(crate) fn erase(buffer: Buffer<'_>) -> Buffer<'static> {
    // SAFETY: a lifetime does not change a type's layout. The erased buffer is only ever
    // given back with the lifetime it had, by the scope that stored it (`Book::restore`,
    // `shared::restore`), and a scope's storage is reset before any other scope reads it, so
    // no buffer outlives its borrow.
    unsafe { core::mem::transmute::<Buffer<'_>, Buffer<'static>>(buffer) }
}

/// What [`Book::lookup`] found behind a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// No such request: another size of scope, or prepared and then discarded.
    Invalid,
    /// Completed (handed out or waiting to be), or the slot has moved on to a later request.
    Complete,
    /// Prepared, not submitted.
    Prepared,
    /// In the kernel, submitted from `iocb`; `poll` if it is a POLL.
    InFlight { iocb: *const iocb, poll: bool },
}

/// The bookkeeping of one scope over its [`ScopeSlots`]. The buffers it stores are borrowed for
/// `'scope`, and given back with that lifetime; the storage itself is reset by
/// [`Book::new`], so nothing one book stored is ever seen by another.
///
/// The event array is both where waits put the kernel's events and the done queue: the
/// completions not yet handed out are `events[head..tail]`, each already matched to its
/// slot, and a wait appends after them (moving them to the front first if the rest of the
/// array is too short for what is in flight, which the done ones plus those always fit in).
pub(crate) struct Book<'scope, const N: usize> {
    slots: &'scope mut [Slot; N],
    events: &'scope mut [Event; N],
    prepared: &'scope mut [MaybeUninit<u32>; N],
    n_prepared: usize,
    in_flight: usize,
    head: usize,
    tail: usize,
    /// Head of the free list.
    free: u32,
    nonce: u64,
    _buffers: PhantomData<Buffer<'scope>>,
}

/// The slots, to match events against while a wait takes them from the kernel.
pub(crate) struct Matcher<'a, const N: usize> {
    slots: &'a mut [Slot; N],
    nonce: u64,
}

impl<const N: usize> Matcher<'_, N> {
    /// True if `event` is the completion of an in-flight request of this scope, whose slot it
    /// then marks done.
    ///
    /// Its stamp names the slot, and it is that slot's only if the stamp is the slot's current
    /// one, the slot is busy (a prepared request's current stamp has never reached the kernel,
    /// so busy means in flight here) and the event's iocb address is the slot's: an address
    /// alone could be a stale request's, submitted through the unsafe API from memory the
    /// slots now occupy, and a stamp alone could be forged by anyone who writes to the ring.
    #[inline]
    pub(crate) fn take(&mut self, event: &io_event) -> bool {
        let index = event.data.wrapping_sub(self.nonce) as u32 as usize;
        let Some(slot) = self.slots.get_mut(index) else {
            return false;
        };
        if slot.cb.aio_data != event.data
            || slot.state != State::Busy
            || address(&slot.cb) != event.obj
        {
            return false;
        }
        slot.state = State::Done;
        true
    }
}

impl Ticket {
    /// The slot the ticket's request was (or is) in.
    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.stamp.wrapping_sub(self.scope) as u32 as usize
    }
}

impl<'scope, const N: usize> Book<'scope, N> {
    /// Resets `storage` for a scope whose stamps and tickets carry `nonce`: every slot free,
    /// at generation 0.
    pub(crate) fn new(storage: &'scope mut ScopeSlots<N>, nonce: u64) -> Book<'scope, N> {
        const { assert!(N < NONE as usize, "a scope has fewer than u32::MAX slots") };
        for (i, slot) in storage.slots.iter_mut().enumerate() {
            slot.write(Slot {
                cb: iocb {
                    aio_data: nonce.wrapping_add(i as u64),
                    ..iocb::default()
                },
                user_data: 0,
                buffer: Buffer::None,
                discarded: Self::no_stamp(nonce),
                next: if i + 1 < N { i as u32 + 1 } else { NONE },
                state: State::Free,
            });
        }
        for event in storage.events.iter_mut() {
            event.write(Event::default());
        }
        // SAFETY: every element of both arrays was written just above, and
        // `[MaybeUninit<T>; N]` has the layout of `[T; N]`.
        let (slots, events) = unsafe {
            (
                &mut *(storage.slots.as_mut_ptr().cast::<[Slot; N]>()),
                &mut *(storage.events.as_mut_ptr().cast::<[Event; N]>()),
            )
        };
        Book {
            slots,
            events,
            prepared: &mut storage.prepared,
            n_prepared: 0,
            in_flight: 0,
            head: 0,
            tail: 0,
            free: if N > 0 { 0 } else { NONE },
            nonce,
            _buffers: PhantomData,
        }
    }

    /// A value no stamp of the scope takes (its index part is [`NONE`], beyond every slot).
    fn no_stamp(nonce: u64) -> u64 {
        nonce.wrapping_add(u64::from(NONE))
    }

    /// A buffer [`erase`]d by this book, with the lifetime it was lent for.
    #[inline]
    fn restore(buffer: Buffer<'static>) -> Buffer<'scope> {
        // SAFETY: only this book's methods call it, on buffers of its own slots, each a
        // `Buffer<'scope>` when the book stored it (`erase`): this gives back exactly the
        // borrow the book was lent. (`Buffer` is invariant, because of `ReadVecs`, so even
        // shortening the lifetime needs the transmute.)
        unsafe { core::mem::transmute::<Buffer<'static>, Buffer<'scope>>(buffer) }
    }

    /// Requests submitted and not yet reaped.
    #[inline]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Completions reaped and not yet handed out.
    #[inline]
    pub(crate) fn done(&self) -> usize {
        self.tail - self.head
    }

    /// Requests prepared and not yet submitted.
    #[inline]
    pub(crate) fn prepared(&self) -> usize {
        self.n_prepared
    }

    /// Free slots (outside the methods that claim one for a moment, all are on the free list).
    #[inline]
    pub(crate) fn free(&self) -> usize {
        N - self.n_prepared - self.in_flight - self.done()
    }

    /// Stores `request` in a free slot, [`State::Busy`] and in no list; the request comes back
    /// when every slot is taken.
    #[inline]
    pub(crate) fn claim(&mut self, request: Request<'scope>) -> Result<Ticket, Request<'scope>> {
        self.claim_index(request).map(|(ticket, _)| ticket)
    }

    /// [`Book::claim`], also giving the slot's index.
    #[inline]
    fn claim_index(&mut self, request: Request<'scope>) -> Result<(Ticket, u32), Request<'scope>> {
        let index = self.free as usize;
        // NONE is out of range: one bounds check tells an empty free list too.
        let Some(slot) = self.slots.get_mut(index) else {
            return Err(request);
        };
        self.free = slot.next;
        let (cb, buffer) = request.into_parts();
        // The next generation: no carry into the index part, which is below N.
        let stamp = slot.cb.aio_data.wrapping_add(1 << 32);
        slot.user_data = cb.aio_data;
        slot.cb = iocb {
            aio_data: stamp,
            ..cb
        };
        slot.buffer = erase(buffer);
        slot.state = State::Busy;
        let ticket = Ticket {
            scope: self.nonce,
            stamp,
        };
        Ok((ticket, index as u32))
    }

    /// [`Book::claim`], then appends the slot to the prepared batch.
    #[inline]
    pub(crate) fn prepare(&mut self, request: Request<'scope>) -> Result<Ticket, Request<'scope>> {
        let (ticket, index) = self.claim_index(request)?;
        debug_assert!(self.n_prepared < N);
        // SAFETY: fewer requests are prepared than there are slots, since one was free (every
        // prepared request holds a slot of its own), so `n_prepared < N`.
        unsafe { self.prepared.get_unchecked_mut(self.n_prepared) }.write(index);
        self.n_prepared += 1;
        Ok(ticket)
    }

    /// The iocb of the claimed slot `index`, for `io_submit`.
    #[inline]
    pub(crate) fn iocb_mut(&mut self, index: usize) -> *mut iocb {
        &mut self.slots[index].cb
    }

    /// The claimed slot was submitted.
    #[inline]
    pub(crate) fn launched(&mut self) {
        self.in_flight += 1;
    }

    /// The claimed slot `index` was refused: its request, with the caller's user data, and the
    /// slot back on the free list.
    pub(crate) fn unclaim(&mut self, index: usize) -> Request<'scope> {
        let slot = &mut self.slots[index];
        let buffer = Self::restore(core::mem::replace(&mut slot.buffer, Buffer::None));
        let cb = iocb {
            aio_data: slot.user_data,
            ..slot.cb
        };
        slot.state = State::Free;
        slot.next = self.free;
        self.free = index as u32;
        Request::from_parts(cb, buffer)
    }

    /// Writes the prepared batch's first iocb pointers into `out` (as many as fit), in the
    /// order prepared, and returns how many.
    #[inline]
    pub(crate) fn batch(&mut self, out: &mut [MaybeUninit<*mut iocb>]) -> usize {
        let n = self.n_prepared.min(out.len());
        let base = self.slots.as_mut_ptr();
        for (ptr, index) in out.iter_mut().zip(&self.prepared[..n]) {
            // SAFETY: the first `n_prepared` entries are written by `prepare`, each the index
            // of a slot (below N), so the pointer stays inside the array `base` points to.
            let slot = unsafe { base.add(index.assume_init() as usize) };
            // SAFETY: as above; only the field's address is taken.
            ptr.write(unsafe { core::ptr::addr_of_mut!((*slot).cb) });
        }
        n
    }

    /// The first `accepted` requests of the batch are in the kernel; the rest stay prepared,
    /// in order.
    #[inline]
    pub(crate) fn submitted(&mut self, accepted: usize) {
        let n = self.n_prepared;
        let accepted = accepted.min(n);
        if accepted < n {
            self.prepared.copy_within(accepted..n, 0);
        }
        self.n_prepared = n - accepted;
        self.in_flight += accepted;
    }

    /// The prepared index at position `k < n_prepared` of the batch.
    #[inline]
    fn prepared_at(&self, k: usize) -> usize {
        debug_assert!(k < self.n_prepared);
        // SAFETY: the first `n_prepared` entries are written by `prepare`.
        unsafe { self.prepared[k].assume_init() as usize }
    }

    /// Frees every prepared request (dropping its buffer borrow); their tickets become invalid.
    pub(crate) fn discard_prepared(&mut self) {
        for k in 0..self.n_prepared {
            let index = self.prepared_at(k);
            let slot = &mut self.slots[index];
            slot.buffer = Buffer::None;
            slot.discarded = slot.cb.aio_data;
            slot.state = State::Free;
            slot.next = self.free;
            self.free = index as u32;
        }
        self.n_prepared = 0;
    }

    /// Room for `extra` more events after the done queue, moving the queue to the front of the
    /// array when it is empty or when the rest is too short. Since every queued completion and
    /// every request in flight holds a slot of its own, `done() + extra <= N` always fits.
    #[inline]
    fn make_room(&mut self, extra: usize) {
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        } else if N - self.tail < extra {
            self.events.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
    }

    /// For a wait of up to `in_flight()` events: the space after the done queue that the wait
    /// writes the matched events into, and the slots to match them against. Then
    /// [`Book::queued`].
    #[inline]
    pub(crate) fn reaping(&mut self) -> (&mut [Event], Matcher<'_, N>) {
        self.make_room(self.in_flight);
        let end = (self.tail + self.in_flight).min(N);
        (
            &mut self.events[self.tail..end],
            Matcher {
                slots: self.slots,
                nonce: self.nonce,
            },
        )
    }

    /// [`Book::reaping`] again, for the rest of the same wait: the same space (the queue is
    /// not moved again).
    #[inline]
    pub(crate) fn reaping_again(&mut self) -> (&mut [Event], Matcher<'_, N>) {
        let end = (self.tail + self.in_flight).min(N);
        (
            &mut self.events[self.tail..end],
            Matcher {
                slots: self.slots,
                nonce: self.nonce,
            },
        )
    }

    /// A wait after [`Book::reaping`] kept `kept` events (each matched to its slot) at the
    /// front of the space it was given: they join the done queue.
    #[inline]
    pub(crate) fn queued(&mut self, kept: usize) {
        // The space held at most `in_flight` events, and ended at N.
        debug_assert!(kept <= self.in_flight && self.tail + kept <= N);
        self.tail += kept;
        self.in_flight -= kept;
    }

    /// Queues the completion of slot `index` with `res` and `res2`, not from the ring.
    fn push_done(&mut self, index: usize, res: i64, res2: i64) {
        self.make_room(1);
        let slot = &mut self.slots[index];
        slot.state = State::Done;
        let event = io_event {
            data: slot.cb.aio_data,
            obj: address(&slot.cb),
            res,
            res2,
        };
        if let Some(entry) = self.events.get_mut(self.tail) {
            *entry = Event::from_raw(event);
            self.tail += 1;
        }
    }

    /// The in-flight slot `index` was cancelled and the kernel handed its final event back at
    /// once (kernels before 3.12): to the done queue.
    pub(crate) fn canceled(&mut self, index: usize, res: i64, res2: i64) {
        if self
            .lookup_index(index)
            .is_some_and(|l| matches!(l, Lookup::InFlight { .. }))
        {
            self.in_flight -= 1;
            self.push_done(index, res, res2);
        }
    }

    /// Takes the prepared request `index` out of the batch and completes it with `ECANCELED`.
    pub(crate) fn cancel_prepared(&mut self, index: usize) {
        let n = self.n_prepared;
        if let Some(at) = (0..n).find(|&k| self.prepared_at(k) == index) {
            self.prepared.copy_within(at + 1..n, at);
            self.n_prepared = n - 1;
            self.push_done(index, ECANCELED, 0);
        }
    }

    /// The oldest completion not yet handed out, with its buffer; its slot becomes free.
    #[inline]
    pub(crate) fn pop_done(&mut self) -> Option<Completion<'scope>> {
        let event = *self.events.get(self.head..self.tail)?.first()?.as_raw();
        self.head += 1;
        let index = event.data.wrapping_sub(self.nonce) as u32 as usize;
        // Every queued event was matched to its slot: in range.
        let slot = self.slots.get_mut(index)?;
        let buffer = Self::restore(core::mem::replace(&mut slot.buffer, Buffer::None));
        let user_data = slot.user_data;
        slot.state = State::Free;
        slot.next = self.free;
        self.free = index as u32;
        Some(Completion {
            ticket: Ticket {
                scope: self.nonce,
                stamp: event.data,
            },
            event: Event::from_raw(io_event {
                data: user_data,
                ..event
            }),
            buffer,
        })
    }

    /// What slot `index` holds at its current generation (`None`: no such slot).
    fn lookup_index(&self, index: usize) -> Option<Lookup> {
        let slot = self.slots.get(index)?;
        Some(match slot.state {
            State::Busy if (0..self.n_prepared).any(|k| self.prepared_at(k) == index) => {
                Lookup::Prepared
            }
            State::Busy => Lookup::InFlight {
                iocb: &slot.cb,
                poll: slot.cb.aio_lio_opcode == IOCB_CMD_POLL,
            },
            State::Free | State::Done => Lookup::Complete,
        })
    }

    /// What `ticket` (of this scope) names now.
    pub(crate) fn lookup(&self, ticket: Ticket) -> Lookup {
        let index = ticket.index();
        let Some(slot) = self.slots.get(index) else {
            return Lookup::Invalid; // no scope of this one's size issued it
        };
        if slot.discarded == ticket.stamp {
            Lookup::Invalid // prepared, then discarded: it never ran
        } else if slot.cb.aio_data == ticket.stamp {
            self.lookup_index(index).unwrap_or(Lookup::Invalid)
        } else {
            Lookup::Complete // completed, and the slot reused
        }
    }

    /// The iocb addresses of the in-flight POLLs, which the scope's end cancels (once nothing
    /// is prepared: a prepared slot is busy too).
    pub(crate) fn in_flight_poll(&self, index: usize) -> Option<*const iocb> {
        debug_assert_eq!(self.n_prepared, 0);
        self.slots
            .get(index)
            .filter(|s| s.state == State::Busy && s.cb.aio_lio_opcode == IOCB_CMD_POLL)
            .map(|s| &s.cb as *const iocb)
    }

    /// Forgets every in-flight request (once nothing is prepared): for a forked child (the
    /// requests are its parent's) and after `io_destroy` (which waited for them). Their
    /// buffers' borrows end.
    pub(crate) fn forget_in_flight(&mut self) {
        debug_assert_eq!(self.n_prepared, 0);
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.state == State::Busy {
                slot.buffer = Buffer::None;
                slot.state = State::Free;
                slot.next = self.free;
                self.free = i as u32;
            }
        }
        self.in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    //! The bookkeeping without a kernel: events are made by hand, as the kernel would report
    //! them (or as a stale request or a scribbled ring would). Under Miri too.

    extern crate std;
    use super::*;
    use std::vec::Vec;

    const NONCE: u64 = 0x9e37_79b9_7f4a_7c15;

    /// What the kernel reports for the request submitted from `ptr` with result `res`.
    fn event_of(ptr: *mut iocb, res: i64) -> io_event {
        // SAFETY: `ptr` comes from `Book::batch` or `iocb_mut`, a slot of a live book.
        let data = unsafe { (*ptr).aio_data };
        io_event {
            data,
            obj: ptr as u64,
            res,
            res2: 0,
        }
    }

    fn submit_all<const N: usize>(book: &mut Book<'_, N>) -> Vec<*mut iocb> {
        let mut out = [const { MaybeUninit::uninit() }; N];
        let n = book.batch(&mut out);
        let ptrs = out[..n]
            .iter()
            // SAFETY: `batch` wrote the first n.
            .map(|p| unsafe { p.assume_init() })
            .collect();
        book.submitted(n);
        ptrs
    }

    /// Delivers `events` as a wait would (`Context::wait_keeping`): those the matcher takes
    /// go to the front of the space, the rest are dropped, at most `in_flight` in all (a wait
    /// never takes more). Returns how many were taken.
    fn deliver<const N: usize>(book: &mut Book<'_, N>, events: &[io_event]) -> usize {
        let (space, mut matcher) = book.reaping();
        let mut kept = 0;
        for e in events.iter().take(space.len()) {
            if matcher.take(e) {
                space[kept] = Event::from_raw(*e);
                kept += 1;
            }
        }
        book.queued(kept);
        kept
    }

    #[test]
    fn prepare_submit_reap_hand_out() {
        let mut storage = ScopeSlots::<4>::new();
        let mut book = Book::new(&mut storage, NONCE);
        let mut bufs = [[0u8; 8]; 4];
        let fd = unsafe_fd();
        let mut tickets = Vec::new();
        for (i, b) in bufs.iter_mut().enumerate() {
            let r = Request::read(fd, b, 0).user_data(100 + i as u64);
            tickets.push(book.prepare(r).unwrap());
        }
        assert_eq!((book.prepared(), walk_free(&book)), (4, 0));
        let extra = [0u8; 1];
        let refused = book.prepare(Request::write(fd, &extra, 0)).unwrap_err();
        assert_eq!(refused.iocb().aio_nbytes, 1);
        let ptrs = submit_all(&mut book);
        assert_eq!((book.in_flight(), book.prepared()), (4, 0));
        // Complete in reverse order; completions come out in reap order.
        let events: Vec<io_event> = ptrs.iter().rev().map(|&p| event_of(p, 8)).collect();
        assert_eq!(deliver(&mut book, &events), 4);
        assert_eq!((book.in_flight(), book.done()), (0, 4));
        let mut seen = Vec::new();
        while let Some(c) = book.pop_done() {
            assert_eq!(c.event.result(), Ok(8));
            assert_eq!(c.buffer.len(), 8);
            seen.push((c.event.user_data(), c.ticket));
        }
        let want: Vec<(u64, Ticket)> = (0..4)
            .rev()
            .map(|i| (100 + i, tickets[i as usize]))
            .collect();
        assert_eq!(seen, want);
        assert_eq!(walk_free(&book), 4);
        for t in &tickets {
            assert_eq!(book.lookup(*t), Lookup::Complete);
        }
    }

    #[test]
    fn foreign_stale_and_duplicate_events_are_dropped() {
        let mut storage = ScopeSlots::<2>::new();
        let mut book = Book::new(&mut storage, NONCE);
        let fd = unsafe_fd();
        let mut buf = [0u8; 4];
        let t = book
            .prepare(Request::read(fd, &mut buf, 0).user_data(7))
            .unwrap();
        let ptr = submit_all(&mut book)[0];
        let good = event_of(ptr, 4);
        let stale_address = io_event {
            data: 0xdead,
            ..good
        }; // another request at the slot's iocb
        let forged_stamp = io_event {
            obj: good.obj + 8,
            ..good
        }; // the stamp, elsewhere
        let other_scope = io_event {
            data: good.data ^ 1 << 40,
            ..good
        };
        let out_of_range = io_event {
            data: NONCE ^ 5,
            ..good
        };
        assert_eq!(
            deliver(
                &mut book,
                &[stale_address, forged_stamp, other_scope, out_of_range]
            ),
            0
        );
        assert_eq!(book.in_flight(), 1);
        let found = book.lookup(t);
        assert!(matches!(found, Lookup::InFlight { iocb, poll: false } if iocb as u64 == good.obj));
        // The real one, twice: the second is not taken again.
        assert_eq!(deliver(&mut book, &[good, good]), 1);
        assert_eq!(book.done(), 1);
        let c = book.pop_done().unwrap();
        assert_eq!((c.event.user_data(), c.event.iocb_address()), (7, good.obj));
        assert!(book.pop_done().is_none());
        // Once handed out, the same event again is not taken either.
        assert_eq!(deliver(&mut book, &[good]), 0);
        assert_eq!(walk_free(&book), 2);
    }

    #[test]
    fn partial_batches_keep_their_order_and_discard_invalidates() {
        let mut storage = ScopeSlots::<4>::new();
        let mut book = Book::new(&mut storage, NONCE);
        let fd = unsafe_fd();
        let t: Vec<Ticket> = (0..3)
            .map(|i| book.prepare(Request::fsync(fd).user_data(i)).unwrap())
            .collect();
        let mut out = [const { MaybeUninit::uninit() }; 4];
        assert_eq!(book.batch(&mut out), 3);
        book.submitted(1); // the kernel took the first only
        assert_eq!((book.in_flight(), book.prepared()), (1, 2));
        assert!(book.lookup(t[0]).is_in_flight());
        assert_eq!(book.lookup(t[1]), Lookup::Prepared);
        // The rest are the next batch, in order.
        assert_eq!(book.batch(&mut out), 2);
        // SAFETY: written by `batch`.
        let next = unsafe { out[0].assume_init() };
        // SAFETY: a slot of the live book.
        assert_eq!(unsafe { (*next).aio_data }, stamp_of(t[1]));
        book.discard_prepared();
        assert_eq!(book.lookup(t[1]), Lookup::Invalid);
        assert_eq!(book.lookup(t[2]), Lookup::Invalid);
        assert_eq!((book.prepared(), walk_free(&book)), (0, 3));
        // A later request in a discarded slot: the old ticket is stale, not discarded.
        let fresh = book.prepare(Request::fsync(fd)).unwrap();
        assert_ne!(fresh, t[2]);
    }

    #[test]
    fn cancel_before_submission_completes_with_ecanceled() {
        let mut storage = ScopeSlots::<3>::new();
        let mut book = Book::new(&mut storage, NONCE);
        let fd = unsafe_fd();
        let mut buf = [0u8; 2];
        let a = book.prepare(Request::fsync(fd).user_data(1)).unwrap();
        let b = book
            .prepare(Request::read(fd, &mut buf, 0).user_data(2))
            .unwrap();
        let c = book.prepare(Request::fsync(fd).user_data(3)).unwrap();
        book.cancel_prepared(b.index());
        assert_eq!((book.prepared(), book.done()), (2, 1));
        let ptrs = submit_all(&mut book);
        // SAFETY: slots of the live book.
        let stamps: Vec<u64> = ptrs.iter().map(|&p| unsafe { (*p).aio_data }).collect();
        assert_eq!(stamps, [stamp_of(a), stamp_of(c)]);
        let done = book.pop_done().unwrap();
        assert_eq!(
            (done.ticket, done.event.result()),
            (b, Err(rustix::io::Errno::CANCELED))
        );
        assert_eq!(done.buffer.len(), 2);
    }

    #[test]
    fn refused_requests_come_back_whole() {
        let mut storage = ScopeSlots::<1>::new();
        let mut book = Book::new(&mut storage, NONCE);
        let fd = unsafe_fd();
        let data = [5u8; 3];
        let t = book
            .claim(Request::write(fd, &data, 9).user_data(42))
            .unwrap();
        assert_eq!(book.free, NONE); // claimed: on no list
        assert!(book.claim(Request::fsync(fd)).is_err());
        let back = book.unclaim(t.index());
        assert_eq!((back.iocb().aio_data, back.iocb().aio_offset), (42, 9));
        assert_eq!(back.into_buffer().into_write(), Some(&data[..]));
        assert_eq!(walk_free(&book), 1);
        assert_eq!(book.lookup(t), Lookup::Complete);
    }

    #[test]
    fn slots_are_reused_for_ever_and_zero_slots_work() {
        let mut storage = ScopeSlots::<2>::new();
        let mut book = Book::new(&mut storage, NONCE);
        let fd = unsafe_fd();
        let mut last = None;
        for round in 0..50u64 {
            let t = book.prepare(Request::fsync(fd).user_data(round)).unwrap();
            let p = submit_all(&mut book)[0];
            assert_eq!(deliver(&mut book, &[event_of(p, 0)]), 1);
            let c = book.pop_done().unwrap();
            assert_eq!((c.ticket, c.event.user_data()), (t, round));
            assert_ne!(Some(t), last);
            last = Some(t);
        }
        // The storage can be reset by a new book whatever the last one left.
        let book = Book::new(&mut storage, NONCE ^ 1);
        assert_eq!(walk_free(&book), 2);
        let mut none = ScopeSlots::<0>::new();
        let mut empty = Book::new(&mut none, NONCE);
        assert!(empty.prepare(Request::fsync(fd)).is_err());
        assert_eq!((walk_free(&empty), deliver(&mut empty, &[])), (0, 0));
        assert!(empty.pop_done().is_none());
    }

    /// The per-slot size the docs of `ScopeSlots` and `Context::scope` state.
    #[test]
    fn slot_storage_size_is_as_documented() {
        let per_slot = core::mem::size_of::<ScopeSlots<64>>() / 64;
        #[cfg(target_pointer_width = "64")]
        assert_eq!(per_slot, 148);
        // 136 where a u64 is 4-aligned (i686), 140 where it is 8-aligned (armv7).
        #[cfg(target_pointer_width = "32")]
        assert!(matches!(per_slot, 136 | 140), "{per_slot}");
    }

    #[test]
    fn uninitialised_storage_is_fine() {
        let mut place = std::boxed::Box::<ScopeSlots<3>>::new_uninit();
        let storage = ScopeSlots::from_uninit(&mut place);
        let book = Book::new(storage, NONCE);
        assert_eq!(walk_free(&book), 3);
    }

    /// The free list's length, walked (it must agree with `Book::free`).
    fn walk_free<const N: usize>(book: &Book<'_, N>) -> usize {
        let mut n = 0;
        let mut i = book.free;
        while let Some(slot) = book.slots.get(i as usize) {
            assert_eq!(slot.state, State::Free);
            n += 1;
            i = slot.next;
        }
        assert_eq!(n, book.free());
        n
    }

    impl Lookup {
        fn is_in_flight(self) -> bool {
            matches!(self, Lookup::InFlight { .. })
        }
    }

    fn stamp_of(t: Ticket) -> u64 {
        t.stamp
    }

    /// A descriptor number for iocbs that never reach a kernel.
    fn unsafe_fd() -> rustix::fd::BorrowedFd<'static> {
        // SAFETY: the descriptor is only copied into iocbs that are never submitted.
        unsafe { rustix::fd::BorrowedFd::borrow_raw(0) }
    }
}
