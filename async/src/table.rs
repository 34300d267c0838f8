//! The completion table: one slot per request queued or in flight, the queue of prepared
//! requests, and the futures waiting for a free slot. Futures and the driving turn take its lock
//! for a few instructions at a time; no system call or user code runs under it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use linux_aio::raw::iocb;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

use crate::driver::lock;
use crate::turn::guarded;

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
    /// A read or write on a stream: refused with `EOPNOTSUPP` if its descriptor is in blocking
    /// mode when the turn submits it (see `File`).
    pub stream: bool,
}

impl Slot {
    pub(crate) fn new() -> Slot {
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
            stream: false,
        }
    }
}

/// No slot (the end of a [`Queue`]).
const NIL: u32 = u32::MAX;

/// The queue of prepared requests: a doubly linked list threaded through per-slot links, so
/// that a request leaves it in O(1) wherever it is (a future dropped while queued), and
/// nothing is allocated after the driver is built.
pub(crate) struct Queue {
    /// (previous, next) of each slot in the queue.
    links: Box<[(u32, u32)]>,
    head: u32,
    tail: u32,
    len: usize,
}

impl Queue {
    pub fn new(slots: usize) -> Queue {
        Queue {
            links: vec![(NIL, NIL); slots].into_boxed_slice(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn push_back(&mut self, i: u32) {
        self.links[i as usize] = (self.tail, NIL);
        match self.tail {
            NIL => self.head = i,
            t => self.links[t as usize].1 = i,
        }
        self.tail = i;
        self.len += 1;
    }
    pub fn push_front(&mut self, i: u32) {
        self.links[i as usize] = (NIL, self.head);
        match self.head {
            NIL => self.tail = i,
            h => self.links[h as usize].0 = i,
        }
        self.head = i;
        self.len += 1;
    }
    pub fn pop_front(&mut self) -> Option<u32> {
        let i = self.head;
        if i == NIL {
            return None;
        }
        self.remove(i);
        Some(i)
    }
    /// Takes slot `i` (which must be queued) out of the queue.
    pub fn remove(&mut self, i: u32) {
        let (prev, next) = self.links[i as usize];
        match prev {
            NIL => self.head = next,
            p => self.links[p as usize].1 = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.links[n as usize].0 = prev,
        }
        self.links[i as usize] = (NIL, NIL);
        self.len -= 1;
    }
}

pub(crate) struct Table {
    pub slots: Box<[Slot]>,
    pub free: Vec<u32>,
    /// Prepared requests, in order, waiting for the driver.
    pub pending: Queue,
    /// Abandoned requests to cancel (polls), as (slot, generation).
    pub cancels: Vec<(u32, u32)>,
    /// Futures waiting for a free slot, by waiter id (ids increase: oldest first). A future
    /// that goes leaves at once, so the map only holds futures that are still waiting.
    pub room: BTreeMap<u64, Waker>,
    /// Waiters a released slot was handed to (waiter id -> slot), until they poll again: a
    /// slot freed while futures wait goes to the oldest of them, never to a newcomer.
    pub granted: BTreeMap<u64, u32>,
    pub next_waiter: u64,
    /// Woken when the queue becomes non-empty or a cancellation is requested: every driving
    /// loop's waker, by loop id (0: callers of `Driver::turn`; a spawned thread or tokio task
    /// has its own, removed when it ends or its runtime drops it). Each is taken when woken and
    /// registered again at that loop's next turn. Every loop is woken, so a request queued
    /// while one of them is gone (its runtime shut down) is still submitted by another.
    pub flush: Vec<(u64, Option<Waker>)>,
    /// The spare list of a [`Flush`] for the wakers beyond its inline ones (empty, with room
    /// for every registered loop's), so that waking the loops never allocates.
    pub flush_spare: Vec<Waker>,
    /// The id of the next driving loop (0 is `Driver::turn`'s).
    pub next_loop: u64,
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
    /// A turn found the driver finished and signalled the eventfd, so that every driving loop
    /// (the teardown's too) wakes and ends.
    pub finish_announced: bool,
}

/// How many driving loops' wakers a [`Flush`] holds in place; beyond that it uses the table's
/// spare list ([`Table::flush_spare`]).
const INLINE_LOOPS: usize = 4;

/// The driving loops' wakers taken from the table, to wake outside its lock. Never allocates
/// per batch: up to [`INLINE_LOOPS`] wakers are held in place, more go into the table's spare
/// list, reserved when the loops register and handed back after each wake.
#[derive(Default)]
pub(crate) struct Flush {
    inline: [Option<Waker>; INLINE_LOOPS],
    rest: Vec<Waker>,
}

impl Flush {
    /// Wakes every waker taken, each under its own `catch_unwind` (a waker's panic is the
    /// user's, already reported by the panic hook): one that panics never leaves the others
    /// unwoken, nor unwinds into the caller (a future's poll or drop, the last handle's drop).
    /// Call it with no lock held. The spare list goes back to `table` for the next batch.
    pub fn wake(mut self, table: Option<&Mutex<Table>>) {
        for w in self.inline.iter_mut().filter_map(Option::take) {
            guarded(|| w.wake());
        }
        for w in self.rest.drain(..) {
            guarded(|| w.wake());
        }
        if let Some(table) = table.filter(|_| self.rest.capacity() > 0) {
            let mut t = lock(table);
            if t.flush_spare.capacity() < self.rest.capacity() {
                // The one replaced (empty) is freed here, after the lock.
                std::mem::swap(&mut t.flush_spare, &mut self.rest);
            }
        }
    }
}

impl Table {
    /// Takes every driving loop's waker (each registers again at its next turn).
    pub fn take_flush(&mut self) -> Flush {
        let mut out = Flush::default();
        let mut inline = out.inline.iter_mut();
        for w in self.flush.iter_mut().filter_map(|(_, w)| w.take()) {
            match inline.next() {
                Some(place) => *place = Some(w),
                None => {
                    if out.rest.capacity() == 0 {
                        out.rest = std::mem::take(&mut self.flush_spare);
                    }
                    // Reserved at registration (allocates only if another batch's wake has
                    // the spare list at this moment).
                    out.rest.push(w);
                }
            }
        }
        out
    }

    /// Registers driving loop `id`'s waker, taking it from `new` unless the registered one
    /// wakes the same task. Returns the waker replaced, to drop outside the lock.
    pub fn register(&mut self, id: u64, waker: &Waker, new: &mut Option<Waker>) -> Option<Waker> {
        match self.flush.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) if w.as_ref().is_some_and(|w| w.will_wake(waker)) => None,
            Some((_, w)) => std::mem::replace(w, new.take()),
            None => {
                self.flush.push((id, new.take()));
                // Room for every waker beyond the inline ones, so that no batch allocates.
                let extra = self.flush.len().saturating_sub(INLINE_LOOPS);
                if self.flush_spare.capacity() < extra {
                    self.flush_spare.reserve_exact(extra);
                }
                None
            }
        }
    }

    /// Driving loop `id` has ended: its waker goes (returned, to drop outside the lock).
    pub fn unregister(&mut self, id: u64) -> Option<Waker> {
        let k = self.flush.iter().position(|(i, _)| *i == id)?;
        self.flush.swap_remove(k).1
    }

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
        slot.stream = false;
        if let Some(orphan) = slot.orphan.take() {
            trash.extend(Some(orphan));
        }
        if let Some(fd) = slot.fd.take() {
            trash.extend(Some(Box::new(fd) as Trash));
        }
        self.give(i)
    }

    /// Hands free slot `i` to the oldest future waiting for one (returning its waker, to wake
    /// outside the lock), or puts it back on the free list.
    pub fn give(&mut self, i: u32) -> Option<Waker> {
        match self.room.pop_first() {
            Some((id, waker)) => {
                self.granted.insert(id, i);
                Some(waker)
            }
            None => {
                self.free.push(i);
                None
            }
        }
    }

    /// Waiter `id` goes: out of the queue, or, if a slot was handed to it, the slot goes on
    /// to the next waiter (whose waker is returned).
    pub fn leave_room(&mut self, id: u64) -> Option<Waker> {
        if self.room.remove(&id).is_some() {
            return None;
        }
        let i = self.granted.remove(&id)?;
        self.give(i)
    }

    /// A completion (or a refusal) for the request with `user_data`: the future gets the
    /// result, or, if it has gone, the slot is released. Stale or foreign user data is ignored.
    pub(crate) fn complete(
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
