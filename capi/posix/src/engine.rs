//! The process-wide state: one kernel context, a table of requests in progress, the lists of
//! `lio_listio` calls waiting for their last request, and the notifications still to deliver.
//!
//! Everything here is guarded by one lock (`EngineGuard`), except what must be readable from a
//! signal handler: a request's status lives in its control block (see `cb`), and [`LIVE`]
//! mirrors which control block each slot serves, so that `aio_suspend` tells a request in
//! progress from a block that names none without the lock.
//!
//! # Requests
//! A slot is taken when a request is queued and given back when it has completed and been
//! notified: a program that never calls `aio_return` leaks nothing. Slots in progress are kept
//! in submission order (the "live" list), which orders streams and `aio_fsync`'s barrier.
//!
//! # fork
//! A child inherits this memory (the parent's table, its locks, perhaps held by a thread the
//! child does not have) and a shared mapping of the parent's completion ring, but not the
//! kernel context. Every entry point first compares the process token
//! (`linux_aio::ring::process_token`, a page the kernel wipes in a child) with the one the
//! state was made for; a child finds them different and starts afresh: free locks, an empty
//! table, no context (a new one is made when it first needs one), no service thread. The
//! parent's ring, eventfd and context are left alone (never read, written or closed). The
//! child's copies of its parent's control blocks still say `EINPROGRESS`, with the parent's
//! token: the child's calls treat them as naming no request (see `calls`).

use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};

use linux_aio::raw::{aio_context_t, iocb};
use linux_aio::ring::Ring;
use rustix::io::Errno;

use crate::abi::aiocb;
use crate::cb;
use crate::lock::{Guard, Lock};
use crate::notify::Notify;

/// Requests in progress at once (the process's `AIO_MAX`); more are refused with `EAGAIN`.
pub const SLOTS: usize = 1024;
/// `lio_listio(LIO_NOWAIT)` calls with a notification, waiting for their requests at once.
pub const LISTS: usize = 64;
/// "No slot" in the table's links.
pub const NONE: u32 = u32::MAX;

/// How requests are executed in this process.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Not decided yet: no request was made.
    Unset,
    /// Kernel AIO.
    Async,
    /// No kernel AIO (`ENOSYS`): each request runs when it is queued.
    Sync,
}

/// Where a request is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Free,
    /// Held by the library: behind an earlier request on the same stream (or, for a sync,
    /// any earlier request on the descriptor), or waiting to be handed to the kernel again.
    Queued,
    /// A kernel POLL waits for readiness (streams).
    Polling,
    /// The kernel is executing the transfer or sync (in synchronous mode: a thread is).
    InKernel,
    /// Complete; its notification is queued.
    Notify,
    /// Complete and notified, but the slot is still held by an `orphan` kernel request.
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Read,
    Write,
    Fsync,
    Fdsync,
}

/// What kind of descriptor a request is on, which decides how it reaches the kernel (as in
/// `linux_aio::posix`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A regular file or block device: straight to the kernel.
    File,
    /// A pipe or FIFO: after a readiness report, `PIPE_BUF` bytes always fit.
    Pipe,
    /// A byte-stream socket: after a readiness report, `PIPE_BUF` bytes fit.
    ByteSocket,
    /// A datagram or seqpacket socket: a message is never split.
    MessageSocket,
    /// Terminals and other character devices.
    Other,
}

pub struct Slot {
    pub state: State,
    pub generation: u32,
    pub cb: *mut aiocb,
    pub op: Op,
    pub fd: c_int,
    /// A stream request's private duplicate of `fd` (`F_DUPFD_CLOEXEC`, made at submission,
    /// closed at completion), which its transfers and POLLs use: the request completes on the
    /// file it was made on even if the program closes or replaces `fd` meanwhile. -1 if none.
    pub kfd: c_int,
    pub buf: usize,
    pub nbytes: usize,
    pub offset: i64,
    pub reqprio: c_int,
    pub kind: Kind,
    /// A stream request that cannot wait: zero bytes, or a listening socket.
    pub immediate: bool,
    /// Bytes a stream write has transferred so far.
    pub done: usize,
    /// Stream transfers use `RWF_NOWAIT` (false once the kernel refused it).
    pub nowait: bool,
    /// A readiness report came and no transfer has used it yet.
    pub ready: bool,
    /// A cancelled POLL whose completion is still to come: the slot stays taken until then.
    pub orphan: bool,
    pub seq: u64,
    /// The file `fd` named when the request was queued (see `kernel::FileId`).
    pub file: crate::kernel::FileId,
    pub notify: Notify,
    /// The `lio_listio` list this request counts toward, or `NONE`.
    pub list: u32,
    /// Live list (in progress) or free list.
    pub next: u32,
    pub prev: u32,
    /// Notification queue.
    pub notice_next: u32,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: State::Free,
            generation: 0,
            cb: core::ptr::null_mut(),
            op: Op::Read,
            fd: -1,
            kfd: -1,
            buf: 0,
            nbytes: 0,
            offset: 0,
            reqprio: 0,
            kind: Kind::File,
            immediate: false,
            done: 0,
            nowait: false,
            ready: false,
            orphan: false,
            seq: 0,
            file: None,
            notify: Notify::None,
            list: NONE,
            next: NONE,
            prev: NONE,
            notice_next: NONE,
        }
    }

    pub fn stream(&self) -> bool {
        self.kind != Kind::File
    }
}

/// A `lio_listio(LIO_NOWAIT)` call's notification, sent when `remaining` reaches 0.
pub struct List {
    pub remaining: u32,
    pub notify: Notify,
    pub next: u32,
    pub notice_next: u32,
}

/// A queue of notifications, linked through the slots' and lists' `notice_next`; an id below
/// `SLOTS` is a slot, `SLOTS + i` list `i`.
#[derive(Clone, Copy)]
pub struct Queue {
    head: u32,
    tail: u32,
}

/// The wake-up eventfd (see `wait`): two descriptors of the library's own, numbered high, and
/// how to tell that both still name it, checked before every read or write so that a
/// descriptor the program closed and reused is never touched (every eventfd has the same
/// `st_dev`/`st_ino`, so `fstat` cannot tell).
#[derive(Clone, Copy)]
pub struct Efd {
    pub fd: c_int,
    pub twin: c_int,
    /// 0: `kcmp(KCMP_FILE)` says whether `fd` and `twin` are one file; else the eventfd's
    /// `eventfd-id` (`/proc/self/fdinfo`, Linux 5.2+), which both must show (the twin keeps
    /// the id taken while the program closes and reuses `fd`).
    pub id: u64,
}

pub struct Engine {
    pub mode: Mode,
    pub ctx: aio_context_t,
    /// The completion ring, read in user space (only by the reaper, see `wait`).
    pub ring: Option<Ring>,
    pub efd: Option<Efd>,
    /// The wake-up POLL on `efd` is in the kernel.
    pub wake_in_flight: bool,
    /// Eventfds made again after the first (see `wait::arm`).
    pub efd_remakes: u32,
    pub slots: [Slot; SLOTS],
    pub free: u32,
    pub live_head: u32,
    pub live_tail: u32,
    /// Slots in `State::Queued` (`start_streams` has nothing to do while 0).
    pub queued: u32,
    pub next_seq: u64,
    pub lists: [List; LISTS],
    pub free_lists: u32,
    pub signals: Queue,
    pub callbacks: Queue,
    /// Set when a request completes: waiters are woken when the lock is released.
    pub completed: bool,
}

/// Which control block each slot serves while its request is in progress (0 otherwise), and
/// its generation: read without the lock by `aio_suspend`, `aio_error` and `aio_return`.
pub struct LiveSlot {
    pub cb: AtomicUsize,
    pub generation: AtomicU32,
}

pub static LIVE: [LiveSlot; SLOTS] = [const {
    LiveSlot {
        cb: AtomicUsize::new(0),
        generation: AtomicU32::new(0),
    }
}; SLOTS];

/// The kernel's `struct iocb` of each slot, and (last) of the wake-up POLL. Apart from the
/// engine so that the kernel may read one during an `io_submit` made without the lock while
/// another thread holds it: a slot's iocb is written only while the slot is not in the kernel.
pub struct Iocbs([UnsafeCell<iocb>; SLOTS + 1]);

// SAFETY: each iocb is written only under the engine lock by the thread that holds its slot
// (see above), and read by the kernel.
unsafe impl Sync for Iocbs {}

pub static IOCBS: Iocbs = Iocbs([const { UnsafeCell::new(zero_iocb()) }; SLOTS + 1]);

const fn zero_iocb() -> iocb {
    // SAFETY: iocb is plain integers; all-zero is valid.
    unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
}

impl Iocbs {
    pub fn get(&self, i: usize) -> *mut iocb {
        self.0[i].get()
    }
}

/// The index of the wake-up POLL's iocb.
pub const WAKE_IOCB: usize = SLOTS;

struct Shared {
    lock: Lock,
    engine: UnsafeCell<Engine>,
}

// SAFETY: `engine` is only reached through `EngineGuard`, which holds `lock`, or by `reset`,
// which runs while no other thread of the process can be inside the library.
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    lock: Lock::new(),
    engine: UnsafeCell::new(Engine {
        mode: Mode::Unset,
        ctx: 0,
        ring: None,
        efd: None,
        wake_in_flight: false,
        efd_remakes: 0,
        slots: [const { Slot::new() }; SLOTS],
        free: NONE,
        live_head: NONE,
        live_tail: NONE,
        queued: 0,
        next_seq: 0,
        lists: [const {
            List {
                remaining: 0,
                notify: Notify::None,
                next: NONE,
                notice_next: NONE,
            }
        }; LISTS],
        free_lists: NONE,
        signals: Queue {
            head: NONE,
            tail: NONE,
        },
        callbacks: Queue {
            head: NONE,
            tail: NONE,
        },
        completed: false,
    }),
};

/// The engine, locked. Dropping it unlocks, then wakes the threads waiting for completions
/// and delivers the signals that completions queued (never while holding the lock: a handler
/// may `siglongjmp` out).
pub struct EngineGuard {
    _lock: Option<Guard<'static>>,
}

impl core::ops::Deref for EngineGuard {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        // SAFETY: the guard holds the lock (see Shared).
        unsafe { &*SHARED.engine.get() }
    }
}

impl core::ops::DerefMut for EngineGuard {
    fn deref_mut(&mut self) -> &mut Engine {
        // SAFETY: the guard holds the lock, and the guard is borrowed mutably.
        unsafe { &mut *SHARED.engine.get() }
    }
}

impl Drop for EngineGuard {
    fn drop(&mut self) {
        let completed = core::mem::replace(&mut self.completed, false);
        let signals = self.signals.head != NONE;
        self._lock = None;
        if completed {
            crate::wait::completed();
        }
        if signals {
            crate::notify::deliver_signals();
        }
    }
}

/// Locks the engine of this process (starting afresh in a forked child). `None` if the calling
/// thread holds it already (a signal handler interrupted it inside the library).
pub fn lock() -> Option<EngineGuard> {
    crate::process::check();
    SHARED.lock.lock().map(|g| EngineGuard { _lock: Some(g) })
}

/// Locks the engine without delivering anything on release, for the delivery loop itself.
pub fn lock_quiet() -> Option<QuietGuard> {
    SHARED.lock.lock().map(QuietGuard)
}

/// The engine, locked, released without waking or delivering.
pub struct QuietGuard(#[allow(dead_code)] Guard<'static>);

impl core::ops::Deref for QuietGuard {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        // SAFETY: the guard holds the lock.
        unsafe { &*SHARED.engine.get() }
    }
}

impl core::ops::DerefMut for QuietGuard {
    fn deref_mut(&mut self) -> &mut Engine {
        // SAFETY: the guard holds the lock, and the guard is borrowed mutably.
        unsafe { &mut *SHARED.engine.get() }
    }
}

/// Starts the process's state afresh: at the first call, and in a forked child.
///
/// # Safety
/// No other thread of the process may be using the engine (see `process::check`).
pub unsafe fn reset() {
    SHARED.lock.reset();
    // SAFETY: the caller's.
    let e = unsafe { &mut *SHARED.engine.get() };
    // A parent's ring and context are not the child's: forgotten, never read or destroyed
    // (a Ring has no destructor; dropping the handle only forgets the address).
    e.ring = None;
    e.mode = Mode::Unset;
    e.ctx = 0;
    e.efd = None;
    e.wake_in_flight = false;
    e.efd_remakes = 0;
    e.free = NONE;
    for i in (0..SLOTS).rev() {
        let s = &mut e.slots[i];
        let generation = s.generation.wrapping_add(1);
        *s = Slot::new();
        s.generation = generation;
        s.next = e.free;
        e.free = i as u32;
        LIVE[i].cb.store(0, SeqCst);
    }
    e.live_head = NONE;
    e.live_tail = NONE;
    e.queued = 0;
    e.free_lists = NONE;
    for i in (0..LISTS).rev() {
        e.lists[i].remaining = 0;
        e.lists[i].notify = Notify::None;
        e.lists[i].notice_next = NONE;
        e.lists[i].next = e.free_lists;
        e.free_lists = i as u32;
    }
    e.signals = Queue::EMPTY;
    e.callbacks = Queue::EMPTY;
    e.completed = false;
}

impl Queue {
    pub const EMPTY: Queue = Queue {
        head: NONE,
        tail: NONE,
    };
}

impl Engine {
    fn notice_next(&mut self, id: u32) -> &mut u32 {
        if (id as usize) < SLOTS {
            &mut self.slots[id as usize].notice_next
        } else {
            &mut self.lists[id as usize - SLOTS].notice_next
        }
    }

    fn push_notice(&mut self, signal: bool, id: u32) {
        *self.notice_next(id) = NONE;
        let queue = if signal { self.signals } else { self.callbacks };
        if queue.tail == NONE {
            let q = if signal {
                &mut self.signals
            } else {
                &mut self.callbacks
            };
            q.head = id;
            q.tail = id;
        } else {
            *self.notice_next(queue.tail) = id;
            let q = if signal {
                &mut self.signals
            } else {
                &mut self.callbacks
            };
            q.tail = id;
        }
        if !signal {
            crate::notify::callback_queued();
        }
    }

    /// Takes the next notification of one queue, releasing what it held.
    pub fn pop_notice(&mut self, signal: bool) -> Option<Notify> {
        let q = if signal { self.signals } else { self.callbacks };
        let id = q.head;
        if id == NONE {
            return None;
        }
        let next = *self.notice_next(id);
        let q = if signal {
            &mut self.signals
        } else {
            &mut self.callbacks
        };
        q.head = next;
        if next == NONE {
            q.tail = NONE;
        }
        if (id as usize) < SLOTS {
            let notify = self.slots[id as usize].notify;
            self.slots[id as usize].state = State::Done;
            self.release(id as usize);
            Some(notify)
        } else {
            let l = id as usize - SLOTS;
            let notify = self.lists[l].notify;
            self.free_list(l);
            Some(notify)
        }
    }

    /// Takes a free slot for `cb`, appended to the live list, in `State::Queued` (counted).
    pub fn alloc(&mut self, cb: *mut aiocb) -> Option<usize> {
        let i = self.free;
        if i == NONE {
            return None;
        }
        let i = i as usize;
        self.free = self.slots[i].next;
        let seq = self.next_seq;
        self.next_seq += 1;
        let tail = self.live_tail;
        let s = &mut self.slots[i];
        let generation = s.generation.wrapping_add(1);
        *s = Slot::new();
        s.generation = generation;
        s.cb = cb;
        s.seq = seq;
        s.state = State::Queued;
        s.prev = tail;
        s.next = NONE;
        if tail == NONE {
            self.live_head = i as u32;
        } else {
            self.slots[tail as usize].next = i as u32;
        }
        self.live_tail = i as u32;
        self.queued += 1;
        LIVE[i].generation.store(generation, SeqCst);
        LIVE[i].cb.store(cb as usize, SeqCst);
        Some(i)
    }

    fn unlink_live(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        if prev == NONE {
            self.live_head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NONE {
            self.live_tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        self.slots[i].next = NONE;
        self.slots[i].prev = NONE;
    }

    /// Closes slot `i`'s private duplicate, if it has one (a POLL still in the kernel holds
    /// its own reference to the file).
    fn close_kfd(&mut self, i: usize) {
        let kfd = core::mem::replace(&mut self.slots[i].kfd, -1);
        if kfd >= 0 {
            // SAFETY: the library's own descriptor, made at submission, closed once.
            unsafe { libc::close(kfd) };
        }
    }

    /// Gives slot `i` back once it is done with (notified, and no orphan in the kernel).
    pub fn release(&mut self, i: usize) {
        let s = &mut self.slots[i];
        if s.state == State::Done && !s.orphan {
            s.state = State::Free;
            s.cb = core::ptr::null_mut();
            s.next = self.free;
            self.free = i as u32;
        }
    }

    /// Takes slot `i` out of the table without a status (a request refused before it was
    /// queued): the caller sets the control block's status.
    pub fn discard(&mut self, i: usize) {
        self.close_kfd(i);
        if self.slots[i].state == State::Queued {
            self.queued -= 1;
        }
        LIVE[i].cb.store(0, SeqCst);
        self.unlink_live(i);
        let list = core::mem::replace(&mut self.slots[i].list, NONE);
        if list != NONE {
            self.list_done(list as usize);
        }
        self.slots[i].state = State::Done;
        self.release(i);
    }

    /// Completes slot `i`: its status goes to the control block (error status last), the slot
    /// leaves the live list, and its notification (and its list's, if it was the last) is
    /// queued.
    pub fn finish(&mut self, i: usize, result: Result<usize, Errno>) {
        let (ret, err) = match result {
            Ok(n) => (n.min(isize::MAX as usize) as isize, 0),
            Err(e) => (-1, e.raw_os_error()),
        };
        if self.slots[i].state == State::Queued {
            self.queued -= 1;
        }
        // The status first, then LIVE: a lock-free reader (`in_progress`) that finds the slot
        // no longer serving the block then finds the final status there too (the SeqCst
        // store publishes the status store before it), never "EINPROGRESS, naming nothing".
        // SAFETY: the control block stays valid until its request completes (POSIX's contract
        // with the caller), and this is the completion.
        unsafe { cb::finish(self.slots[i].cb, ret, err) };
        self.close_kfd(i);
        LIVE[i].cb.store(0, SeqCst);
        self.unlink_live(i);
        self.completed = true;
        let list = core::mem::replace(&mut self.slots[i].list, NONE);
        if list != NONE {
            self.list_done(list as usize);
        }
        let notify = self.slots[i].notify;
        if notify.is_none() {
            self.slots[i].state = State::Done;
            self.release(i);
        } else {
            self.slots[i].state = State::Notify;
            self.push_notice(notify.is_signal(), i as u32);
        }
    }

    /// A list for `lio_listio(LIO_NOWAIT)` with `notify`, counting one guard request that
    /// [`Engine::list_done`] must end once every request is queued.
    pub fn alloc_list(&mut self, notify: Notify) -> Option<usize> {
        let l = self.free_lists;
        if l == NONE {
            return None;
        }
        let l = l as usize;
        self.free_lists = self.lists[l].next;
        self.lists[l].remaining = 1;
        self.lists[l].notify = notify;
        Some(l)
    }

    /// One request of list `l` is done (or the guard): notifies when none remains.
    pub fn list_done(&mut self, l: usize) {
        self.lists[l].remaining -= 1;
        if self.lists[l].remaining == 0 {
            let notify = self.lists[l].notify;
            if notify.is_none() {
                self.free_list(l);
            } else {
                self.push_notice(notify.is_signal(), (SLOTS + l) as u32);
            }
        }
    }

    fn free_list(&mut self, l: usize) {
        self.lists[l].notify = Notify::None;
        self.lists[l].next = self.free_lists;
        self.free_lists = l as u32;
    }
}

/// True if `cb` names a request of this process that is in progress. Lock-free. False when
/// it completed meanwhile: a caller that read `EINPROGRESS` before must read the status again
/// before concluding that the block names no request.
///
/// # Safety
/// `cb` is a valid control block.
pub unsafe fn in_progress(cb: *const aiocb) -> bool {
    // SAFETY: the caller's.
    if unsafe { cb::error(cb) } != cb::EINPROGRESS {
        return false;
    }
    // SAFETY: the caller's.
    let (owner, slot, generation) = unsafe { cb::private(cb) };
    if owner != crate::process::me() || slot as usize >= SLOTS {
        return false;
    }
    let live = &LIVE[slot as usize];
    live.cb.load(SeqCst) == cb as usize && live.generation.load(SeqCst) == generation
}
