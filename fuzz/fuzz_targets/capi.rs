//! The C library's entry points against hostile arguments: null, misaligned, unmapped and
//! kernel-space pointers, bogus contexts (zero, random, a destroyed one, the address of a fake
//! ring the library never created), negative and huge counts. Each call must return a count
//! or a negated errno (never crash, hang or write `errno`), and a live context must still
//! work afterwards.
//!
//! Three exclusions, where hostile input is the caller's promise broken rather than an error
//! the kernel reports: `io_queue_run` (it calls each event's `data` as a function, as libaio
//! does), an unmapped `ctxp` for `io_queue_init` (it stores 0 there itself first, as libaio
//! does), and an unmapped `events` buffer while completions wait in the ring (the library
//! copies them there itself, as any user-space reaper does, instead of letting the kernel
//! answer EFAULT). Timeouts are never negative (the kernel would wait for ever) and a wait
//! that could block has a zero timeout.
#![no_main]

use core::ffi::{c_int, c_long, c_void};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use linux_aio::raw::{__kernel_timespec, aio_context_t, aio_ring, io_event, iocb, IOCB_CMD_POLL};

// The library's entry points, by the global aliases capi/src/export.rs gives them.
extern "C" {
    fn linux_aio_capi_io_setup(maxevents: c_int, ctxp: *mut aio_context_t) -> c_int;
    fn linux_aio_capi_io_destroy(ctx: aio_context_t) -> c_int;
    fn linux_aio_capi_io_submit(ctx: aio_context_t, nr: c_long, iocbs: *mut *mut iocb) -> c_int;
    fn linux_aio_capi_io_cancel(ctx: aio_context_t, cb: *mut iocb, ev: *mut io_event) -> c_int;
    fn linux_aio_capi_io_cancel_0_1(ctx: aio_context_t, cb: *mut iocb) -> c_int;
    fn linux_aio_capi_io_getevents(
        ctx: aio_context_t,
        min_nr: c_long,
        nr: c_long,
        events: *mut io_event,
        timeout: *mut __kernel_timespec,
    ) -> c_int;
    fn linux_aio_capi_io_getevents_0_1(
        ctx: aio_context_t,
        nr: c_long,
        events: *mut io_event,
        timeout: *mut __kernel_timespec,
    ) -> c_int;
    fn linux_aio_capi_io_pgetevents(
        ctx: aio_context_t,
        min_nr: c_long,
        nr: c_long,
        events: *mut io_event,
        timeout: *mut __kernel_timespec,
        sigmask: *const c_void,
    ) -> c_int;
    fn linux_aio_capi_io_queue_init(maxevents: c_int, ctxp: *mut aio_context_t) -> c_int;
    fn linux_aio_capi_io_queue_release(ctx: aio_context_t) -> c_int;
    fn linux_aio_capi_io_queue_wait(ctx: aio_context_t, timeout: *mut __kernel_timespec) -> c_int;
}

// Keeps the rlib (and so the aliases) linked.
use aio as _;

/// Memory the pointers are drawn from: a writable arena, an unmapped page, a fake ring.
struct World {
    arena: *mut u8,
    unmapped: *mut u8,
    fake_ring: *mut u8,
    ctx: aio_context_t,
    destroyed: aio_context_t,
    never: c_int,
}

// SAFETY: the pointers are only used by the fuzzing thread.
unsafe impl Send for World {}
// SAFETY: as above.
unsafe impl Sync for World {}

const ARENA: usize = 1 << 16;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // SAFETY: fresh anonymous mappings; the unmapped one is unmapped again at once (its
        // address stays unused: nothing else in this process maps at a hint).
        unsafe {
            let map = |len| {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                ) as *mut u8
            };
            let arena = map(ARENA);
            let unmapped = map(4096);
            libc::munmap(unmapped.cast(), 4096);
            let fake_ring = map(4096);
            fake_ring.cast::<aio_ring>().write(aio_ring {
                id: 0,
                nr: 100,
                head: 0,
                tail: 50,
                magic: 0xa10a10a1,
                compat_features: 1,
                incompat_features: 0,
                header_length: 32,
            });
            let mut ctx = 0;
            assert_eq!(linux_aio_capi_io_setup(64, &mut ctx), 0, "io_setup");
            let mut destroyed = 0;
            assert_eq!(linux_aio_capi_io_setup(1, &mut destroyed), 0);
            assert_eq!(linux_aio_capi_io_destroy(destroyed), 0);
            let never = libc::eventfd(0, libc::EFD_CLOEXEC);
            World {
                arena,
                unmapped,
                fake_ring,
                ctx,
                destroyed,
                never,
            }
        }
    })
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, i| v | u64::from(self.byte()) << (8 * i))
    }
    fn count(&mut self) -> c_long {
        match self.byte() % 6 {
            0 => 0,
            1 => 1,
            2 => -1,
            3 => c_long::MAX,
            4 => c_long::MIN,
            _ => c_long::from(self.byte()),
        }
    }
}

fn ring_pending(ctx: aio_context_t) -> bool {
    // SAFETY: the world's live context: its ring header is mapped and readable.
    let h = unsafe { (ctx as *const aio_ring).read_volatile() };
    h.head != h.tail
}

/// A pointer of a hostile kind into (or outside) the world; `writable_only` keeps it to
/// memory that may be written (for buffers the library itself writes).
fn pointer(w: &World, input: &mut Input<'_>, writable_only: bool) -> *mut u8 {
    let offset = usize::from(input.byte()) * 64;
    match input.byte() % if writable_only { 3 } else { 6 } {
        0 => std::ptr::null_mut(),
        // SAFETY (both): inside the arena, which has room for 64 KiB.
        1 => unsafe { w.arena.add(offset) },
        2 => unsafe { w.arena.add(offset + 1) }, // misaligned
        3 => w.unmapped,
        4 => 0xffff_8000_0000_0000usize as *mut u8, // kernel space
        _ => 24 as *mut u8,                          // the null page
    }
}

fn context(w: &World, input: &mut Input<'_>) -> aio_context_t {
    match input.byte() % 6 {
        0 => 0,
        1 => w.destroyed,
        2 => w.fake_ring as aio_context_t,
        3 => input.u64() as aio_context_t,
        _ => w.ctx,
    }
}

/// `ctxp` for io_setup: mostly one holding a nonzero id (EINVAL), as a context that works costs
/// an io_destroy (tens of milliseconds). For io_queue_init (`writable_only`), which stores 0
/// in `*ctxp` itself as libaio does, only null or writable memory.
unsafe fn setup_target(
    w: &World,
    input: &mut Input<'_>,
    writable_only: bool,
) -> *mut aio_context_t {
    let p = pointer(w, input, writable_only).cast::<aio_context_t>();
    let arena = w.arena as usize..w.arena as usize + ARENA;
    if arena.contains(&(p as usize)) {
        let id = if input.byte() % 64 == 0 { 0 } else { 1 };
        // SAFETY: inside the writable arena.
        unsafe { p.write_unaligned(id) };
    }
    p
}

fn check(what: &str, ret: c_int) {
    assert!(ret >= -4095, "{what} returned {ret}");
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut input = Input(data);
    let zero = w.arena.cast::<__kernel_timespec>();
    for _ in 0..16 {
        if input.0.is_empty() {
            break;
        }
        // The arena's first timespec is a zero timeout; everything else in it is arbitrary.
        // SAFETY: the arena is writable and aligned at its start.
        unsafe { zero.write(__kernel_timespec::default()) };
        let ctx = context(w, &mut input);
        let live = ctx == w.ctx;
        let op = input.byte() % 10;
        // SAFETY: every pointer is null, inside the arena, or one the kernel checks (EFAULT);
        // the calls below never get a pointer the library itself dereferences unchecked
        // except where `pointer(.., true)` keeps it in writable memory (see the module docs).
        let ret = unsafe {
            match op {
                0 => {
                    let p = setup_target(w, &mut input, false);
                    let r = linux_aio_capi_io_setup(input.byte() as c_int - 8, p);
                    // A context made here is destroyed at once (through its id in the arena).
                    if r == 0 {
                        let id = p.read_unaligned();
                        check("io_destroy", linux_aio_capi_io_destroy(id));
                    }
                    r
                }
                1 if !live => linux_aio_capi_io_destroy(ctx),
                2 => {
                    // iocbs: a list in the arena naming POLLs on a never-ready eventfd (they
                    // stay in flight), wild pointers, or the list itself wild.
                    let list = w.arena.add(4096).cast::<*mut iocb>();
                    let cbs = w.arena.add(8192).cast::<iocb>();
                    for i in 0..8 {
                        cbs.add(i).write(iocb {
                            aio_lio_opcode: if input.byte() % 4 == 0 { 99 } else { IOCB_CMD_POLL },
                            aio_fildes: w.never as u32,
                            aio_buf: libc::POLLIN as u64,
                            ..Default::default()
                        });
                        let p = if input.byte() % 5 == 0 {
                            pointer(w, &mut input, false).cast()
                        } else {
                            cbs.add(i)
                        };
                        list.add(i).write(p);
                    }
                    let l = if input.byte() % 4 == 0 {
                        pointer(w, &mut input, false).cast()
                    } else {
                        list
                    };
                    let nr = input.count().clamp(-2, 8);
                    linux_aio_capi_io_submit(ctx, nr, l)
                }
                3 => {
                    let cb = if input.byte() % 2 == 0 {
                        w.arena.add(8192 + 64 * usize::from(input.byte() % 8)).cast()
                    } else {
                        pointer(w, &mut input, false).cast()
                    };
                    let ev = pointer(w, &mut input, false).cast();
                    linux_aio_capi_io_cancel(ctx, cb, ev)
                }
                4 => linux_aio_capi_io_cancel_0_1(ctx, pointer(w, &mut input, false).cast()),
                5..=7 => {
                    let (min_nr, nr) = (input.count(), input.count());
                    // Completions waiting: the library copies them itself (see the module docs).
                    let ev = pointer(w, &mut input, live && ring_pending(ctx)).cast();
                    // A zero timeout or one the kernel cannot read: never null or arbitrary
                    // bytes (a wait that cannot end, or a long one, would stall the fuzzer).
                    let timeout = match input.byte() % 8 {
                        0 => w.unmapped.cast(),
                        1 => 0xffff_8000_0000_0000usize as *mut __kernel_timespec,
                        2 => {
                            let odd = w.arena.add(ARENA - 64 + 1).cast::<__kernel_timespec>();
                            odd.write_unaligned(__kernel_timespec::default());
                            odd
                        }
                        _ => zero,
                    };
                    let nr = nr.clamp(-1, 64);
                    match op {
                        5 => linux_aio_capi_io_getevents(ctx, min_nr.clamp(-1, 64), nr, ev, timeout),
                        6 => linux_aio_capi_io_getevents_0_1(ctx, nr, ev, timeout),
                        _ => {
                            let mask = pointer(w, &mut input, false).cast();
                            linux_aio_capi_io_pgetevents(ctx, min_nr.clamp(-1, 64), nr, ev, timeout, mask)
                        }
                    }
                }
                8 => {
                    let p = setup_target(w, &mut input, true);
                    // It zeroes *ctxp itself, so a positive count mostly succeeds, and each
                    // context made costs an io_destroy: mostly counts the library refuses.
                    let maxevents = match input.byte() % 32 {
                        0 => 4,
                        _ => -c_int::from(input.byte()),
                    };
                    let r = linux_aio_capi_io_queue_init(maxevents, p);
                    if r == 0 {
                        let id = p.read_unaligned();
                        check("io_queue_release", linux_aio_capi_io_queue_release(id));
                    }
                    r
                }
                _ => linux_aio_capi_io_queue_wait(ctx, zero),
            }
        };
        check("call", ret);
    }
    // The live context still works: an empty wait answers 0 (or the events it holds).
    let mut events = [io_event::default(); 64];
    let mut zero_ts = __kernel_timespec::default();
    // SAFETY: a live context, room for 64 events, a zero timeout.
    let r = unsafe { linux_aio_capi_io_getevents(w.ctx, 0, 64, events.as_mut_ptr(), &mut zero_ts) };
    assert!((0..=64).contains(&r), "the live context broke: {r}");
});
