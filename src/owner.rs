//! Which process a context belongs to, so that a forked child never reaps its parent's ring.
//!
//! `fork` gives the child a copy of every `Context`, `Scope` and POSIX layer, and a *shared*
//! mapping of each completion ring, but not the kernel contexts themselves: the kernel answers
//! `EINVAL` to the child for every one of them. A child that read an inherited ring in user
//! space and stored its `head` would consume completions that belong to the parent, which would
//! then wait for ever. So every context records an [`Owner`], and the calls that could touch
//! the ring, or would otherwise answer something other than the kernel's `EINVAL`, check it
//! first. This holds for every way of making a child without `CLONE_VM` (`fork`, `_Fork`, raw
//! `clone`/`clone3`), since it relies on nothing but the kernel's treatment of the memory.
//!
//! The check is one load. The process keeps a nonzero token in a private anonymous page marked
//! `MADV_WIPEONFORK` (Linux 4.14): the page reads as zeros in a child, which then draws a token
//! of its own the first time it needs one, from a counter that only grows (the child's copy of
//! it is past every token the parent handed out). A context is the caller's if the token it
//! recorded equals the page's.
//!
//! Without `MADV_WIPEONFORK` (kernels before 4.14, or an emulator that refuses it) the answer
//! costs system calls instead: the process keeps a page marked `MADV_DONTFORK`, which a child
//! does not have (`madvise` on it fails with `ENOMEM` there), and its process id (which a child
//! in a new pid namespace may share, hence both). Contexts then never read their ring in user
//! space (every wait is an `io_getevents`, which the kernel refuses to a child by itself), and
//! only the calls that do not reach the kernel, or to which the kernel's answer would be
//! ambiguous (`io_cancel`'s `EINVAL` also means "not cancelable"), pay for the check.

use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rustix::mm::Advice;

/// The process that created a context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    /// The process's token page, when the kernel wipes it on fork.
    marker: Option<&'static AtomicU64>,
    /// The token the page held when the context was created (0 without a page).
    token: u64,
    /// The creating process's id and its `MADV_DONTFORK` page, for the check without a
    /// token page.
    pid: i32,
    unshared: usize,
}

/// The token page's address (wiped on fork); [`NO_PAGE`] once mapping or marking it failed; 0
/// before the first try.
static WIPED: AtomicUsize = AtomicUsize::new(0);
/// The page a child does not inherit, for the check without `MADV_WIPEONFORK`.
static UNSHARED: AtomicUsize = AtomicUsize::new(0);
const NO_PAGE: usize = 1;

/// Source of process tokens; a child inherits its value, so its tokens differ from its parent's.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// The length mapped for each page (the kernel rounds it up to its page size).
const PAGE_LEN: usize = 4096;

/// `page`'s address, mapping it with `advice` on first use (`NO_PAGE` if that fails).
fn page(page: &AtomicUsize, advice: Advice) -> usize {
    let address = page.load(Ordering::Acquire);
    if address != 0 {
        return address;
    }
    map_page(page, advice)
}

#[cold]
fn map_page(page: &AtomicUsize, advice: Advice) -> usize {
    use rustix::mm::{madvise, mmap_anonymous, munmap, MapFlags, ProtFlags};
    let flags = ProtFlags::READ | ProtFlags::WRITE;
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing: nothing else
    // refers to it.
    let mapped = unsafe { mmap_anonymous(null_mut(), PAGE_LEN, flags, MapFlags::PRIVATE) };
    let address = match mapped {
        Ok(ptr) => {
            // SAFETY: `ptr` is the page just mapped above.
            match unsafe { madvise(ptr, PAGE_LEN, advice) } {
                Ok(()) => ptr as usize,
                Err(_) => {
                    // SAFETY: unmapping the page mapped above, which nothing refers to.
                    let _ = unsafe { munmap(ptr, PAGE_LEN) };
                    NO_PAGE
                }
            }
        }
        Err(_) => NO_PAGE,
    };
    match page.compare_exchange(0, address, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => address,
        Err(winner) => {
            if address != NO_PAGE {
                // SAFETY: another thread installed its page first; ours was never published.
                let _ = unsafe { munmap(address as *mut c_void, PAGE_LEN) };
            }
            winner
        }
    }
}

/// The process's token page, mapped and marked `MADV_WIPEONFORK` on first use.
fn marker() -> Option<&'static AtomicU64> {
    let address = page(&WIPED, Advice::LinuxWipeOnFork);
    if address == NO_PAGE {
        return None;
    }
    // SAFETY: a page address stored in WIPED is a private anonymous mapping that is never
    // unmapped, writable, and 4096-aligned; its first 8 bytes are only accessed atomically.
    Some(unsafe { AtomicU64::from_ptr(address as *mut u64) })
}

/// This process's token, drawn on first use (and again in a forked child, whose page reads 0).
fn token(marker: &AtomicU64) -> u64 {
    let token = marker.load(Ordering::Relaxed);
    if token != 0 {
        return token;
    }
    let fresh = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    match marker.compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => fresh,
        Err(other) => other,
    }
}

/// This process's token where the kernel wipes pages on fork, for [`crate::ring::process_token`].
pub(crate) fn process_token() -> Option<u64> {
    marker().map(token)
}

fn getpid() -> i32 {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// True if something is mapped at `address` (`madvise(MADV_NORMAL)` there fails with ENOMEM
/// only where nothing is).
fn mapped(address: usize) -> bool {
    // SAFETY: MADV_NORMAL changes nothing about a mapping, and touches nothing where there is
    // none.
    let probe = unsafe { rustix::mm::madvise(address as *mut c_void, PAGE_LEN, Advice::Normal) };
    probe != Err(rustix::io::Errno::NOMEM)
}

/// This process's `MADV_DONTFORK` page (`NO_PAGE` if it cannot be made). A child finds its
/// parent's address unmapped and maps a page of its own, never at that address (an inherited
/// `Owner` must keep finding nothing there).
fn unshared_page() -> usize {
    let known = page(&UNSHARED, Advice::LinuxDontFork);
    if known == NO_PAGE || mapped(known) {
        return known;
    }
    let mut fresh = map_page(&AtomicUsize::new(0), Advice::LinuxDontFork);
    if fresh == known {
        // The kernel reused the hole: keep that page mapped (never used) and take another.
        fresh = map_page(&AtomicUsize::new(0), Advice::LinuxDontFork);
    }
    match UNSHARED.compare_exchange(known, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(winner) => winner, // another thread of this child did the same (a page lost)
    }
}

/// [`Owner::forked`] as one load and one compare, for hot paths: a word, and the value it
/// holds in the owning process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForkCheck {
    word: &'static AtomicU64,
    token: u64,
}

/// The word of a [`ForkCheck`] without a token page: never written, so never "forked" (as
/// [`Owner::forked`] says without one).
static NEVER_WIPED: AtomicU64 = AtomicU64::new(0);

impl ForkCheck {
    /// [`Owner::forked`].
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != self.token
    }
}

impl Owner {
    /// [`Owner::forked`] without the branch on whether there is a token page.
    pub(crate) fn fork_check(&self) -> ForkCheck {
        match self.marker {
            Some(word) => ForkCheck {
                word,
                token: self.token,
            },
            None => ForkCheck {
                word: &NEVER_WIPED,
                token: 0,
            },
        }
    }

    /// The calling process.
    pub(crate) fn current() -> Owner {
        let marker = marker();
        Owner {
            marker,
            token: marker.map_or(0, token),
            pid: getpid(),
            unshared: if marker.is_none() {
                unshared_page()
            } else {
                NO_PAGE
            },
        }
    }

    /// True if telling a forked child apart costs one load ([`Owner::forked`]); false if it
    /// needs system calls ([`Owner::forked_slow`]), in which case contexts do not reap their
    /// ring in user space.
    pub(crate) fn is_cheap(&self) -> bool {
        self.marker.is_some()
    }

    /// True if the caller is provably not the process that created the context (a forked
    /// child). One load; without the token page, always false (the kernel tells the child
    /// by itself wherever it is asked).
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        self.marker
            .is_some_and(|m| m.load(Ordering::Relaxed) != self.token)
    }

    /// [`Owner::forked`], asking the kernel (`getpid`, and whether the `MADV_DONTFORK` page is
    /// there) when there is no token page.
    pub(crate) fn forked_slow(&self) -> bool {
        match self.marker {
            Some(_) => self.forked(),
            None => getpid() != self.pid || (self.unshared != NO_PAGE && !mapped(self.unshared)),
        }
    }
}
