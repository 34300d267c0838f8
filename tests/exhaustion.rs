//! Exhaustion: many contexts set up and destroyed, with no completion ring left mapped.
//!
//! `LINUX_AIO_EXHAUST_CONTEXTS` contexts (4,096 by default; `cargo xtask soak` runs 65,536)
//! are each set up, used for one request, and destroyed, by 64 threads at once: io_destroy
//! waits for an RCU grace period (about 35 ms here), and concurrent destroys share them. At
//! most 64 contexts of one slot each are alive at a time, so the system-wide `fs.aio-nr` moves
//! by at most 64 and no other process can be refused a context because of this test; the
//! count that matters is this process's own `[aio]` mappings in /proc/self/maps, which must
//! end where it started. (fs.aio-max-nr itself being reached is emulated, per process, by
//! tests/faults.rs and capi/tests/faults.rs, never exhausted for real.)

#[path = "support/faults.rs"]
mod faults;
#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

use linux_aio::{Context, Errno, Request};
use runner::{skipped, Outcome, Passed};
use rustix::event::PollFlags;

const THREADS: u64 = 64;
const DEFAULT_CONTEXTS: u64 = 4096;

fn main() {
    runner::run(
        "exhaustion",
        &[(
            "contexts_set_up_and_destroyed_without_leaks",
            contexts_set_up_and_destroyed_without_leaks,
        )],
    )
}

fn contexts_set_up_and_destroyed_without_leaks() -> Outcome {
    let total: u64 = std::env::var("LINUX_AIO_EXHAUST_CONTEXTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_CONTEXTS);
    match Context::new(1) {
        Err(Errno::NOSYS) => return skipped("kernel AIO unavailable: io_setup gives ENOSYS"),
        Err(e) => panic!("io_setup: {e}"),
        Ok(c) => c.destroy().unwrap(),
    }
    let before = faults::aio_mappings();
    let efd = scratch::eventfd();
    rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
    let next = AtomicU64::new(0);
    let (alive, peak, done) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|t| {
        for _ in 0..THREADS {
            t.spawn(|| {
                while next.fetch_add(1, Relaxed) < total {
                    let mut ctx = Context::new(1).expect("io_setup");
                    let n = alive.fetch_add(1, Relaxed) + 1;
                    peak.fetch_max(n, Relaxed);
                    // One request each, so every context has had a completion in its ring.
                    ctx.scope::<1, _>(|s| {
                        s.submit(Request::poll(efd.as_fd(), PollFlags::IN)).unwrap();
                        assert_eq!(s.wait(1, Some(Duration::from_secs(5))).unwrap().count(), 1);
                    });
                    ctx.destroy().expect("io_destroy");
                    alive.fetch_sub(1, Relaxed);
                    done.fetch_add(1, Relaxed);
                }
            });
        }
        // Meanwhile: this process never has more rings mapped than contexts alive.
        while done.load(Relaxed) < total {
            let mapped = faults::aio_mappings();
            assert!(
                mapped <= before + THREADS as usize,
                "{mapped} rings mapped with at most {THREADS} contexts alive"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let elapsed = started.elapsed();
    let after = faults::aio_mappings();
    println!(
        "    {total} contexts set up, used and destroyed in {:.1} s by {THREADS} threads \
         (at most {} alive at once); [aio] mappings {before} before, {after} after",
        elapsed.as_secs_f64(),
        peak.load(Relaxed)
    );
    assert_eq!(after, before, "completion rings left mapped");
    Passed
}
