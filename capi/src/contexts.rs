//! The contexts this library created, whose completion rings `io_getevents` may read in user
//! space, and who is reaping each of them.
//!
//! A ring is read only if it is known to be one the kernel mapped: its size (`nr`) is recorded
//! right after `io_setup`, when only the kernel has written the header, and each read checks the
//! header again against it (linux-aio's `Ring` keeps every access inside the mapping). Contexts
//! made another way (a raw `io_setup` system call, another libaio), contexts beyond the table's
//! 64 live ones, and contexts a forked child inherited are not in the table: their completions
//! are always taken by the system call, exactly as libaio takes them.
//!
//! # Reapers
//! The kernel serialises its own readers of a ring, but a user-space reader and an
//! `io_getevents` system call that overlapped would both take the same events (each reads
//! `head`, copies, writes `head`). libaio never consumes from the ring, so programs may call
//! `io_getevents` on one context from several threads; to keep that working, each context has a
//! reaper word:
//! - a thread reads the ring only if it can move the word from 0 to `USER` (nobody in the
//!   kernel, no other user-space reader); otherwise it makes the system call;
//! - a thread about to make the system call waits while `USER` is set (a copy of at most `nr`
//!   events), then counts itself in (`KERNEL` per thread) until the call returns;
//! - `io_destroy` takes the context out of the table, then waits while `USER` is set, so that a
//!   reader never outlives the mapping.
//!
//! What stays the caller's to ensure, as with any user-space reaper: nothing takes this
//! context's completions behind the library's back (a direct `io_getevents` system call, a
//! second libaio in the process), and a signal handler never reaps a context that the code it
//! interrupted is reaping (it would wait for that code forever).
//!
//! # fork
//! A child inherits the ring (shared memory) and this table, but not the context: the kernel
//! answers `EINVAL` to the child. A child reading the ring would steal its parent's completions,
//! so each slot records the process token of the process that created the context
//! (`linux_aio::ring::process_token`, which a child sees change however it was made: `fork`,
//! `_Fork`, raw `clone` or `clone3`, with or without `pthread_atfork` handlers), and a slot counts
//! only for the process whose token it holds: in a child every inherited context is unknown,
//! and its calls all go to the kernel. A child reuses inherited slots for contexts of its own.
//! Where the kernel has no `MADV_WIPEONFORK` (before 4.14) no context is recorded, and none is
//! read in user space.

use core::hint::spin_loop;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use linux_aio::raw::{aio_context_t, aio_ring};
use linux_aio::ring::{process_token, Ring};

/// How many live contexts can be reaped in user space.
const SLOTS: usize = 64;
/// Reaper word: a thread is reading the ring in user space.
const USER: usize = 1;
/// Reaper word: one thread in an `io_getevents`/`io_pgetevents` system call.
const KERNEL: usize = 2;

struct Slot {
    /// The context id (the ring's address), 0 for a free slot.
    ctx: AtomicUsize,
    /// The process token of the process that recorded `ctx` (the slot is free for any other).
    owner: AtomicU64,
    /// The ring's slot count as read right after `io_setup`; 0 while not (or no longer) usable.
    nr: AtomicU32,
    /// `USER` and/or `KERNEL` times the number of threads in the kernel.
    reapers: AtomicUsize,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            ctx: AtomicUsize::new(0),
            owner: AtomicU64::new(0),
            nr: AtomicU32::new(0),
            reapers: AtomicUsize::new(0),
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// This process's token, or 0 where none can be had (then nothing is ever recorded).
fn me() -> u64 {
    process_token().map_or(0, |t| t.get())
}

/// The slot recording `ctx` for this process (a forked child finds none of its parent's).
fn find(ctx: aio_context_t) -> Option<&'static Slot> {
    let me = me();
    if ctx == 0 || me == 0 {
        return None;
    }
    TABLE
        .iter()
        .find(|s| s.ctx.load(SeqCst) == ctx as usize && s.owner.load(SeqCst) == me)
}

/// Records a context that `io_setup` has just created. Without room in the table, or without
/// a process token, the context is simply always reaped by the system call.
pub fn register(ctx: aio_context_t) {
    // SAFETY: io_setup has just mapped the ring at `ctx`, and only the kernel has written to it.
    // The Ring is dropped at the end of this function; only its slot count is kept.
    let Some(ring) = (unsafe { Ring::attach(ctx as *mut aio_ring) }) else {
        return;
    };
    let me = me();
    if me == 0 {
        return;
    }
    // Still recorded: a context at this address was destroyed without this library's
    // io_destroy (a raw system call) and the kernel has reused the address.
    if let Some(stale) = find(ctx) {
        stale.nr.store(ring.nr(), SeqCst);
        return;
    }
    for slot in &TABLE {
        // Free, or another process's (inherited through fork): nobody in this process uses it.
        let (seen, owner) = (slot.ctx.load(SeqCst), slot.owner.load(SeqCst));
        if (seen == 0 || owner != me)
            && slot
                .ctx
                .compare_exchange(seen, ctx as usize, SeqCst, SeqCst)
                .is_ok()
        {
            // find() matches the slot only once `owner` is stored, so the rest is in place first.
            slot.reapers.store(0, SeqCst);
            slot.nr.store(ring.nr(), SeqCst);
            slot.owner.store(me, SeqCst);
            return;
        }
    }
}

/// Forgets `ctx` before `io_destroy` unmaps its ring, waiting for a user-space reader of it to
/// finish.
pub fn unregister(ctx: aio_context_t) {
    if let Some(slot) = find(ctx) {
        slot.nr.store(0, SeqCst);
        slot.owner.store(0, SeqCst);
        slot.ctx.store(0, SeqCst);
        // A reader that set USER before the store above may still be copying; one that sets it
        // afterwards sees ctx gone and lets go without touching the ring.
        while slot.reapers.load(SeqCst) & USER != 0 {
            spin_loop();
        }
    }
}

/// The right to read a recorded context's ring in user space, held by one thread at a time and
/// never while another thread is in the kernel for the same context.
pub struct UserReaper {
    slot: &'static Slot,
    ring: Ring,
}

impl UserReaper {
    /// `None` if `ctx` was not created here, another thread is reaping it, or its ring header
    /// no longer matches what `io_setup` left.
    pub fn new(ctx: aio_context_t) -> Option<UserReaper> {
        let slot = find(ctx)?;
        slot.reapers
            .compare_exchange(0, USER, SeqCst, SeqCst)
            .ok()?;
        // Looked at again now that USER is set: unregister() clears ctx before it waits for USER.
        let nr = slot.nr.load(SeqCst);
        let ours = slot.ctx.load(SeqCst) == ctx as usize && slot.owner.load(SeqCst) == me();
        let ring = if ours && nr != 0 {
            // SAFETY: `ctx` is recorded, so this library's io_setup created it, and io_destroy
            // cannot unmap it while USER is held. The header is checked again by attach() and its
            // slot count must still be the one read right after io_setup, so the Ring is exactly
            // the one attach() would have made then.
            unsafe { Ring::attach(ctx as *mut aio_ring) }.filter(|r| r.nr() == nr)
        } else {
            None
        };
        match ring {
            Some(ring) => Some(UserReaper { slot, ring }),
            None => {
                slot.reapers.fetch_and(!USER, SeqCst);
                None
            }
        }
    }

    pub fn ring(&mut self) -> &mut Ring {
        &mut self.ring
    }
}

impl Drop for UserReaper {
    fn drop(&mut self) {
        self.slot.reapers.fetch_and(!USER, SeqCst);
    }
}

/// A thread's presence in an `io_getevents`/`io_pgetevents` system call on a recorded context.
pub struct KernelReaper(Option<&'static Slot>);

impl KernelReaper {
    /// Waits for a user-space reader of `ctx` to finish, then keeps new ones out until dropped.
    /// Contexts that are not recorded need nothing.
    pub fn new(ctx: aio_context_t) -> KernelReaper {
        let slot = find(ctx);
        if let Some(slot) = slot {
            let mut word = slot.reapers.load(SeqCst);
            loop {
                if word & USER != 0 {
                    spin_loop();
                    word = slot.reapers.load(SeqCst);
                    continue;
                }
                match slot
                    .reapers
                    .compare_exchange_weak(word, word + KERNEL, SeqCst, SeqCst)
                {
                    Ok(_) => break,
                    Err(now) => word = now,
                }
            }
        }
        KernelReaper(slot)
    }
}

impl Drop for KernelReaper {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            slot.reapers.fetch_sub(KERNEL, SeqCst);
        }
    }
}
