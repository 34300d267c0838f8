//! One timed sample: wall time, the thread's CPU time (user plus system) and the allocations
//! made, around exactly the loop being measured.
//!
//! CPU time is `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`: the same quantity as
//! `getrusage(RUSAGE_THREAD)`'s user + system, but brought up to date at the call. With tick
//! accounting (`CONFIG_TICK_CPU_ACCOUNTING`, HZ=250 here) getrusage's sum only advances at a
//! tick or a context switch, so a busy loop of system calls reads up to 4 ms stale: 10% of a
//! 40 ms sample.

use std::time::Instant;

use crate::alloc;

/// What one timed loop did and cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Requests completed (or contexts created, for setup/teardown).
    pub ops: u64,
    /// Wall time of the loop (for setup/teardown: of the setups alone).
    pub wall_ns: u64,
    /// CPU time of this thread, user plus system.
    pub cpu_ns: u64,
    /// Heap allocations made during the loop.
    pub allocs: u64,
    /// Setup/teardown only: wall time of the teardowns.
    pub teardown_ns: u64,
}

fn thread_cpu_ns() -> u64 {
    // SAFETY: an all-zero timespec is valid, and clock_gettime only writes it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is writable; CLOCK_THREAD_CPUTIME_ID exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A running measurement: [`Measure::start`] right before the loop, [`Measure::stop`] right after.
pub struct Measure {
    wall: Instant,
    cpu_ns: u64,
    allocs: u64,
}

impl Measure {
    /// Starts measuring.
    pub fn start() -> Measure {
        let allocs = alloc::count();
        let cpu_ns = thread_cpu_ns();
        Measure {
            wall: Instant::now(),
            cpu_ns,
            allocs,
        }
    }

    /// Stops measuring a loop that completed `ops` requests.
    pub fn stop(self, ops: u64) -> Sample {
        let wall_ns = self.wall.elapsed().as_nanos() as u64;
        let cpu_ns = thread_cpu_ns().saturating_sub(self.cpu_ns);
        Sample {
            ops,
            wall_ns,
            cpu_ns,
            allocs: alloc::count() - self.allocs,
            teardown_ns: 0,
        }
    }
}
