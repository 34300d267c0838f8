//! The adversarial review's reproducers for src/raw/time32.rs (arm and x86 only; elsewhere
//! empty): the two paths give a timeout one meaning, and a misaligned one is read. (Its fourth,
//! a stop and continue restarting a wait, is the kernel's io_pgetevents and is documented in the
//! README's "Time on 32-bit targets".)
//! Needs real AIO: the i686 build on the x86_64 host kernel (IA32 compat), or the armv7/i686
//! guests (`cargo xtask vm`), where every linux-aio integration test joins by itself.
//!
//! i686 on the host:
//!   L=/usr/i686-linux-gnu/lib
//!   RUSTFLAGS="-C link-arg=-Wl,--dynamic-linker=$L/ld-linux.so.2 -C link-arg=-Wl,-rpath=$L" \
//!   CARGO_TARGET_I686_UNKNOWN_LINUX_GNU_RUNNER=env \
//!   cargo test -p linux-aio --target i686-unknown-linux-gnu --test time32_paths -- --test-threads=1
#![cfg(any(linux_aio_arch = "arm", linux_aio_arch = "x86"))]

use linux_aio::raw::{self, __kernel_timespec, aio_context_t, io_event, iocb};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The fallback switch is process-wide: one test at a time.
static LOCK: Mutex<()> = Mutex::new(());

struct Ctx(aio_context_t);
impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: ours, unused afterwards.
        unsafe { raw::io_destroy(self.0) };
        raw::__force_time32_calls(false);
    }
}

fn ctx() -> Option<Ctx> {
    let mut id = 0;
    // SAFETY: id is a zeroed aio_context_t.
    let r = unsafe { raw::io_setup(8, &mut id) };
    (r == 0).then_some(Ctx(id))
}

/// raw::io_getevents(ctx, 1, 1, ..) with `ts`, with a POLL that becomes ready after
/// `ready_after`: (return value, elapsed).
fn wait(ctx: &Ctx, time32: bool, ts: __kernel_timespec, ready_after: Duration) -> (i64, Duration) {
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut cb = iocb {
        aio_lio_opcode: raw::IOCB_CMD_POLL,
        aio_fildes: a.as_raw_fd() as u32,
        aio_buf: 1,
        ..Default::default()
    };
    let mut list = [&mut cb as *mut iocb];
    // SAFETY: a POLL on a live socket; reaped below before `a` and `cb` go.
    assert_eq!(unsafe { raw::io_submit(ctx.0, 1, list.as_mut_ptr()) }, 1);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(ready_after);
        b.write_all(b"x").unwrap();
        b
    });
    let mut ts = ts;
    let mut ev = [io_event::default(); 1];
    raw::__force_time32_calls(time32);
    let start = Instant::now();
    // SAFETY: ev has room for one event; ts is live and aligned.
    let r = unsafe { raw::io_getevents(ctx.0, 1, 1, ev.as_mut_ptr(), &mut ts) };
    let waited = start.elapsed();
    raw::__force_time32_calls(false);
    let _b = writer.join().unwrap();
    if r == 0 {
        let mut long = __kernel_timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { raw::io_getevents(ctx.0, 1, 1, ev.as_mut_ptr(), &mut long) },
            1
        );
    }
    (r.into(), waited)
}

/// Same timeout, both paths: the raw layer promises one meaning of `__kernel_timespec`
/// whichever call serves it (README "Time on 32-bit targets").
fn same_on_both_paths(ts: __kernel_timespec) {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(ctx) = ctx() else { return }; // no AIO here (qemu-user): nothing to show
    let ready = Duration::from_millis(400);
    let (r64, t64) = wait(&ctx, false, ts, ready);
    let (r32, t32) = wait(&ctx, true, ts, ready);
    let gave = |r: i64, t: Duration| {
        if r == 1 && t >= Duration::from_millis(380) {
            "waited for the event".to_string()
        } else {
            format!("{r} after {t:?}")
        }
    };
    assert!(
        r64 == r32 && (t64.as_millis() as i64 - t32.as_millis() as i64).abs() < 200,
        "{ts:?}: io_pgetevents_time64 path: {}; 32-bit fallback: {}",
        gave(r64, t64),
        gave(r32, t32)
    );
}

/// tv_nsec's upper 32 bits: the kernel's time64 ABI on a 32-bit task ignores them (they are
/// padding there: get_timespec64), so {0, 2^32} is a zero timeout on the time64 path; the
/// fallback clamps the i64 to i32::MAX ns and waits 2.1 s.
#[test]
fn nsec_upper_bits_mean_the_same_on_both_paths() {
    same_on_both_paths(__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 1 << 32,
    });
}

/// A 64-bit timeout whose nanoseconds wrap to 0 in the kernel (i64::MIN seconds): no wait on
/// the time64 path; the fallback clamps to i32::MIN seconds and waits for ever.
#[test]
fn i64_min_seconds_mean_the_same_on_both_paths() {
    same_on_both_paths(__kernel_timespec {
        tv_sec: i64::MIN,
        tv_nsec: 0,
    });
}

/// raw::io_getevents's contract: "`timeout` must be null or readable" (no alignment). The
/// kernel reads any alignment; the fallback dereferences `&*timeout`, undefined behaviour for
/// a misaligned pointer (a debug build panics with "misaligned pointer dereference").
#[test]
fn misaligned_readable_timeout_on_the_fallback() {
    if std::env::var_os("ATK_MISALIGNED_CHILD").is_some() {
        let Some(ctx) = ctx() else { return };
        let mut storage = [0u64; 4];
        let p = (storage.as_mut_ptr() as *mut u8).wrapping_add(2) as *mut __kernel_timespec;
        // SAFETY: bytes 2..18 of a 32-byte buffer.
        unsafe {
            p.write_unaligned(__kernel_timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            })
        };
        let mut ev = [io_event::default(); 1];
        for time32 in [false, true] {
            raw::__force_time32_calls(time32);
            // SAFETY: the contract as documented: `timeout` readable, `ev` writable.
            let r = unsafe { raw::io_getevents(ctx.0, 1, 1, ev.as_mut_ptr(), p) };
            println!("ATK-RESULT time32 {time32}: {r}");
        }
        return;
    }
    if ctx().is_none() {
        return;
    }
    // A debug build's check aborts the process: run the calls in a child.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "misaligned_readable_timeout_on_the_fallback",
            "--nocapture",
        ])
        .env("ATK_MISALIGNED_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("ATK-RESULT time32 true: 0"),
        "a readable, misaligned timeout: {}\n{}",
        text.lines()
            .filter(|l| l.contains("ATK-RESULT"))
            .collect::<Vec<_>>()
            .join("; "),
        err.lines()
            .find(|l| l.contains("misaligned pointer"))
            .unwrap_or("")
    );
}
