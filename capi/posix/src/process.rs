//! Which process the library's state belongs to (see `engine`, "fork").

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};

/// The token of the process the state was made for (0: none yet).
static OWNER: AtomicU32 = AtomicU32::new(0);
/// The token of the process whose thread is making the state afresh.
static RESETTER: AtomicU32 = AtomicU32::new(0);

/// This process's token: `linux_aio::ring::process_token` (one load), or where the kernel cannot
/// wipe a page on fork (before Linux 4.14) the process id, marked so that it never equals a
/// token (a system call each time; a child in a new pid namespace that has its parent's pid
/// would pass for it there).
pub fn me() -> u32 {
    match linux_aio::ring::process_token() {
        Some(t) => ((t.get() as u32) & 0x7fff_ffff).max(1),
        None => rustix::process::getpid().as_raw_nonzero().get() as u32 | 0x8000_0000,
    }
}

/// Makes sure the state is this process's: at the first call, and in a forked child, starts it
/// afresh. Other threads that arrive meanwhile wait for that.
pub fn check() {
    let me = me();
    if OWNER.load(SeqCst) == me {
        return;
    }
    loop {
        let resetter = RESETTER.load(SeqCst);
        if resetter == me {
            // Another thread of this process is at it.
            while OWNER.load(SeqCst) != me {
                core::hint::spin_loop();
            }
            return;
        }
        if RESETTER
            .compare_exchange(resetter, me, SeqCst, SeqCst)
            .is_ok()
        {
            // SAFETY: every other thread of this process that enters the library waits above
            // until OWNER is stored; a forked child has no other thread inside the library (the
            // parent's threads are not the child's).
            unsafe {
                crate::wait::reset();
                crate::notify::reset();
                crate::engine::reset();
            }
            OWNER.store(me, SeqCst);
            return;
        }
    }
}
