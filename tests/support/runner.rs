//! A minimal test harness shared by the kernel-facing test binaries (`harness = false`).
//!
//! libtest has no run-time skip, and a test that cannot run must say so: here a test returns
//! [`Outcome::Skipped`] with its reason, a panic is a failure (caught, so one failing test never
//! takes the others down), and the binary ends with the line `N passed, N failed, N skipped`
//! and a non-zero exit status if anything failed. The same binary runs on the host, under
//! qemu-user and inside the qemu-system guests.
//!
//! Arguments: an optional substring filter (libtest's flags such as `--nocapture` are ignored).

#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A test that runs longer than this is reported as failed and the binary exits: a hung
/// system call must never hang the suite.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(120);

/// What a test reports when it returns (a panic is a failure).
pub enum Outcome {
    Passed,
    Skipped(String),
}

pub use Outcome::Passed;

/// Shorthand for `Outcome::Skipped(reason.to_string())`.
pub fn skipped(reason: impl Into<String>) -> Outcome {
    Outcome::Skipped(reason.into())
}

pub type Test = (&'static str, fn() -> Outcome);

/// Why the running `fn()` test skipped itself ([`note_skip`]), for [`noting_skips`].
static SKIP_NOTE: Mutex<Option<String>> = Mutex::new(None);

/// Marks the `fn()` test that [`noting_skips`] runs as skipped, with its reason.
pub fn note_skip(why: impl Into<String>) {
    *SKIP_NOTE.lock().unwrap() = Some(why.into());
}

/// Runs a test written as a plain `fn()` (it fails by panicking): skipped if it called
/// [`note_skip`], passed otherwise. A note left by an earlier test that panicked is dropped.
pub fn noting_skips(f: fn()) -> Outcome {
    SKIP_NOTE.lock().unwrap().take();
    f();
    match SKIP_NOTE.lock().unwrap().take() {
        Some(why) => Outcome::Skipped(why),
        None => Passed,
    }
}

/// Runs `tests` in order and exits with the summary.
pub fn run(suite: &'static str, tests: &[Test]) -> ! {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    let counts = watchdog(suite);
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        counts.start(name, passed + failed + skipped, failed, skipped);
        match catch_unwind(AssertUnwindSafe(test)) {
            Ok(Outcome::Passed) => {
                passed += 1;
                println!("test {suite}::{name} ... ok");
            }
            Ok(Outcome::Skipped(why)) => {
                skipped += 1;
                println!("test {suite}::{name} ... SKIPPED: {why}");
            }
            Err(_) => {
                failed += 1;
                failures.push(*name);
                println!("test {suite}::{name} ... FAILED");
            }
        }
    }
    counts.finish();
    if !failures.is_empty() {
        println!("failures in {suite}: {}", failures.join(", "));
    }
    println!("{suite}: {passed} passed, {failed} failed, {skipped} skipped");
    std::process::exit(if failed == 0 { 0 } else { 1 })
}

/// The test in progress, watched by a thread that ends the process if it overruns.
struct Watchdog {
    current: Mutex<Option<(&'static str, Instant, [usize; 3])>>,
}

impl Watchdog {
    fn start(&self, name: &'static str, done: usize, failed: usize, skipped: usize) {
        *self.current.lock().unwrap() = Some((
            name,
            Instant::now(),
            [done - failed - skipped, failed, skipped],
        ));
    }
    fn finish(&self) {
        *self.current.lock().unwrap() = None;
    }
}

fn watchdog(suite: &'static str) -> &'static Watchdog {
    let w: &'static Watchdog = Box::leak(Box::new(Watchdog {
        current: Mutex::new(None),
    }));
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        if let Some((name, since, [p, f, s])) = *w.current.lock().unwrap() {
            if since.elapsed() > TEST_TIME_LIMIT {
                println!(
                    "test {suite}::{name} ... FAILED: still running after {TEST_TIME_LIMIT:?}"
                );
                println!("{suite}: {p} passed, {} failed, {s} skipped", f + 1);
                std::process::exit(1);
            }
        }
    });
    w
}
