//! Reaping completions straight from the ring the kernel maps at the context address, without a
//! system call (the approach of Seastar's reactor and libaio's `user_getevents`).
//!
//! The ring is ordinary writable user memory, so nothing read from it is trusted: the number of
//! slots is taken once, right after `io_setup` (when only the kernel has written the header), and
//! each reap checks the header again and reduces `head` and `tail` modulo that number, so no
//! read or write ever leaves the `32 + 32 * nr` bytes the kernel mapped.
//!
//! Ordering: `tail` is loaded with Acquire (it pairs with the kernel's write barrier between
//! storing an event and storing `tail`), the events are copied, and `head` is stored with Release
//! (so the kernel, which reads `head` under its ring lock, never reuses a slot before the copy).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::raw::{aio_ring, io_event, AIO_RING_INCOMPAT_FEATURES, AIO_RING_MAGIC};

/// A token that differs between this process and every child made from it without `CLONE_VM`
/// (`fork`, `_Fork`, raw `clone`/`clone3`), for layers that keep contexts in tables of their own,
/// such as a C ABI. A child inherits every ring as shared memory but not the contexts, and must
/// never reap them: record the token next to each context right after `io_setup`, and read a
/// ring only while the calling process's token still equals the recorded one.
///
/// One load after the first call (which maps a page marked `MADV_WIPEONFORK`; a child sees it
/// zeroed and draws a token of its own). `None` where the kernel cannot wipe a page on fork
/// (before Linux 4.14): then do not read rings in user space at all.
pub fn process_token() -> Option<core::num::NonZeroU64> {
    crate::owner::process_token().and_then(core::num::NonZeroU64::new)
}

/// Size of the ring header; the events start right after it.
const HEADER_LEN: usize = core::mem::size_of::<aio_ring>();

/// A validated view of a completion ring. One reaper at a time: reaping takes `&mut self`, and
/// nothing else may reap the same context concurrently (no other `Ring`, no `io_getevents`).
///
/// [`Context`](crate::Context) uses this internally; it is public for code that holds a bare
/// context id, such as a C ABI layer.
#[derive(Debug)]
pub struct Ring {
    base: NonNull<aio_ring>,
    nr: u32,
}

// SAFETY: `Ring` is a pointer into a mapping that belongs to the context, not to a thread; all
// accesses to shared words are atomic, and mutation happens only through `&mut` owners.
unsafe impl Send for Ring {}
// SAFETY: as above; `&Ring` only reads (atomically or volatilely).
unsafe impl Sync for Ring {}

impl Ring {
    /// Attaches to the ring at `base` (the context id as an address) if its header says user
    /// space may read it: the magic number, no incompatible features, a 32-byte header and
    /// `nr > 0`. The slot count read now bounds every later access, so it must be the kernel's.
    ///
    /// The header is read with atomic loads: the kernel (and any thread reaping the same ring)
    /// may be writing `head` and `tail` at the same moment.
    ///
    /// # Safety
    /// - `base` is a context id that `io_setup` returned in this process, whose ring stays
    ///   mapped (no `io_destroy`) for as long as the returned `Ring` is used;
    /// - its `nr` field still holds what the kernel wrote: true right after `io_setup`, before
    ///   other code could scribble on the header. A caller that attaches later (the C library
    ///   re-attaching a context it recorded) must compare [`Ring::nr`] with the value it
    ///   recorded right after `io_setup`, and drop the `Ring` if they differ;
    /// - the process is the one that called `io_setup`: a forked child shares the ring with
    ///   its parent, and reaping it would take the parent's completions.
    pub unsafe fn attach(base: *mut aio_ring) -> Option<Ring> {
        let base = NonNull::new(base)?;
        // `nr` is provisional until checked below; `word` only forms in-header addresses.
        let ring = Ring { base, nr: 0 };
        let load = |offset| ring.word(offset).load(Ordering::Relaxed);
        let nr = load(core::mem::offset_of!(aio_ring, nr));
        let ok = load(core::mem::offset_of!(aio_ring, magic)) == AIO_RING_MAGIC
            && load(core::mem::offset_of!(aio_ring, incompat_features))
                == AIO_RING_INCOMPAT_FEATURES
            && load(core::mem::offset_of!(aio_ring, header_length)) as usize == HEADER_LEN
            && nr > 0;
        ok.then_some(Ring { base, nr })
    }

    /// Number of event slots.
    #[inline]
    pub fn nr(&self) -> u32 {
        self.nr
    }

    #[inline]
    fn word(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: every caller passes the offset of one of the header's u32 fields, so the word
        // is inside the mapping and 4-aligned (the mapping is page-aligned); the kernel accesses
        // these words too, so every access here goes through an atomic.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().cast::<u8>().add(offset).cast::<u32>()) }
    }

    /// True while the header still describes the ring attached to (nothing scribbled on it).
    #[inline]
    pub fn intact(&self) -> bool {
        let load = |offset| self.word(offset).load(Ordering::Relaxed);
        // One branch for the four words: each XOR is 0 exactly when the word is as expected.
        (load(core::mem::offset_of!(aio_ring, magic)) ^ AIO_RING_MAGIC)
            | (load(core::mem::offset_of!(aio_ring, incompat_features))
                ^ AIO_RING_INCOMPAT_FEATURES)
            | (load(core::mem::offset_of!(aio_ring, header_length)) ^ HEADER_LEN as u32)
            | (load(core::mem::offset_of!(aio_ring, nr)) ^ self.nr)
            == 0
    }

    #[inline]
    fn head(&self) -> &AtomicU32 {
        self.word(core::mem::offset_of!(aio_ring, head))
    }

    #[inline]
    fn tail(&self) -> &AtomicU32 {
        self.word(core::mem::offset_of!(aio_ring, tail))
    }

    #[inline]
    fn event(&self, index: u32) -> io_event {
        debug_assert!(index < self.nr);
        // SAFETY: index < nr, so the event lies inside the 32 + 32 * nr bytes the kernel mapped;
        // the Acquire load of tail made the kernel's store of it visible. Volatile because the
        // memory is shared with the kernel.
        unsafe {
            self.base
                .as_ptr()
                .cast::<u8>()
                .add(HEADER_LEN + index as usize * core::mem::size_of::<io_event>())
                .cast::<io_event>()
                .read_volatile()
        }
    }

    /// `index` reduced modulo `nr`. The division runs only for a value outside the ring, which
    /// the kernel never stores (it keeps both indices in `0..nr`): a scribbled header.
    #[inline]
    fn wrap(&self, index: u32) -> u32 {
        if index < self.nr {
            index
        } else {
            index % self.nr
        }
    }

    /// The `(head, available)` pair, both within the ring.
    #[inline]
    fn window(&self) -> (u32, u32) {
        let head = self.wrap(self.head().load(Ordering::Relaxed));
        let tail = self.wrap(self.tail().load(Ordering::Acquire));
        let available = if tail >= head {
            tail - head
        } else {
            self.nr - head + tail
        };
        (head, available)
    }

    /// Number of completions waiting in the ring.
    #[inline]
    pub fn pending(&self) -> usize {
        self.window().1 as usize
    }

    /// Copies up to `out.len()` waiting completions into `out`, oldest first, and releases their
    /// slots to the kernel. Returns how many were copied.
    #[inline]
    pub fn reap(&mut self, out: &mut [io_event]) -> usize {
        let (head, available) = self.window();
        let n = (available as usize).min(out.len());
        // `index` walks from head and wraps at nr without a division per event.
        let mut index = head;
        for slot in &mut out[..n] {
            *slot = self.event(index);
            index += 1;
            if index == self.nr {
                index = 0;
            }
        }
        if n > 0 {
            // index == (head + n) % nr
            self.head().store(index, Ordering::Release);
        }
        n
    }

    /// True if a completion for the request whose iocb address is `obj` is waiting in the ring.
    pub fn contains(&self, obj: u64) -> bool {
        let (head, available) = self.window();
        (0..available).any(|i| self.event((head + i) % self.nr).obj == obj)
    }
}

#[cfg(test)]
mod tests {
    //! The ring reader on a simulated ring in ordinary memory (no system calls), so that Miri
    //! can check every access: `cargo +nightly miri test --lib ring`.

    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A kernel-shaped ring: header, then `nr` events, in one u64-aligned allocation.
    struct SimRing {
        mem: Vec<u64>,
        nr: u32,
    }

    impl SimRing {
        fn new(nr: u32) -> SimRing {
            let words = (HEADER_LEN + nr as usize * 32) / 8;
            let mut r = SimRing {
                mem: std::vec![0u64; words],
                nr,
            };
            *r.header() = aio_ring {
                id: 0,
                nr,
                head: 0,
                tail: 0,
                magic: AIO_RING_MAGIC,
                compat_features: 1,
                incompat_features: 0,
                header_length: HEADER_LEN as u32,
            };
            r
        }
        fn base(&mut self) -> *mut aio_ring {
            self.mem.as_mut_ptr().cast()
        }
        fn header(&mut self) -> &mut aio_ring {
            // SAFETY: the allocation starts with a properly aligned header.
            unsafe { &mut *self.base() }
        }
        /// What the kernel does on completion: write the event at tail, then advance tail.
        fn produce(&mut self, data: u64) {
            let tail = self.header().tail;
            let at = HEADER_LEN / 8 + tail as usize * 4;
            self.mem[at..at + 4].copy_from_slice(&[data, 0x1000 + data, data as i64 as u64, 0]);
            let nr = self.nr;
            self.header().tail = (tail + 1) % nr;
        }
        fn attach(&mut self) -> Ring {
            // SAFETY: the simulated ring outlives every Ring made from it in these tests.
            unsafe { Ring::attach(self.base()) }.expect("valid header")
        }
    }

    fn reap_all(ring: &mut Ring, chunk: usize) -> Vec<u64> {
        let mut out = std::vec![io_event::default(); chunk];
        let mut got = Vec::new();
        loop {
            let n = ring.reap(&mut out);
            if n == 0 {
                return got;
            }
            got.extend(out[..n].iter().map(|e| e.data));
        }
    }

    #[test]
    fn reaps_in_order_across_wrap_around() {
        let mut sim = SimRing::new(5);
        let mut ring = sim.attach();
        let mut expected = Vec::new();
        let mut seen = Vec::new();
        for round in 0..7u64 {
            for k in 0..4 {
                sim.produce(round * 10 + k);
                expected.push(round * 10 + k);
            }
            assert_eq!(ring.pending(), 4);
            assert!(ring.contains(0x1000 + round * 10 + 3));
            seen.extend(reap_all(&mut ring, 3));
            assert_eq!(ring.pending(), 0);
        }
        assert_eq!(seen, expected);
        let header = *sim.header();
        assert_eq!(header.head, header.tail);
    }

    #[test]
    fn partial_reaps_keep_the_rest() {
        let mut sim = SimRing::new(8);
        let mut ring = sim.attach();
        for d in 1..=6 {
            sim.produce(d);
        }
        let mut two = [io_event::default(); 2];
        assert_eq!(ring.reap(&mut two), 2);
        assert_eq!((two[0].data, two[1].data), (1, 2));
        assert_eq!(ring.pending(), 4);
        assert_eq!(reap_all(&mut ring, 16), [3, 4, 5, 6]);
        assert_eq!(ring.reap(&mut []), 0);
    }

    #[test]
    fn rejects_bad_headers() {
        for spoil in 0..4 {
            let mut sim = SimRing::new(4);
            match spoil {
                0 => sim.header().magic = 0,
                1 => sim.header().incompat_features = 1,
                2 => sim.header().header_length = 64,
                _ => sim.header().nr = 0,
            }
            // SAFETY: as in SimRing::attach.
            let attached = unsafe { Ring::attach(sim.base()) };
            assert!(attached.is_none(), "spoil {spoil}");
        }
    }

    #[test]
    fn scribbled_indices_stay_inside_the_ring() {
        let mut sim = SimRing::new(4);
        let mut ring = sim.attach();
        assert!(ring.intact());
        // Garbage in head and tail: reads stay within the 4 slots (Miri would flag anything else).
        // u32::MAX is slot 3 and 0xdead_bee1 slot 1 of 4: two events (slots 3 and 0) available.
        sim.header().head = u32::MAX;
        sim.header().tail = 0xdead_bee1;
        let mut out = [io_event::default(); 8];
        assert_eq!(ring.reap(&mut out), 2);
        assert_eq!(sim.header().head, 1);
        // A changed nr or magic marks the ring as no longer usable.
        sim.header().nr = 1 << 30;
        assert!(!ring.intact());
        sim.header().nr = 4;
        sim.header().magic = 1;
        assert!(!ring.intact());
    }
}
