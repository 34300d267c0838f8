//! The soak: mixed requests (reads checked against the file's pattern, writes, polls that
//! complete at once, polls that wait until cancelled) from 4 threads over 2 contexts, with a
//! storm of signals at the 4 threads and forked children poking at the inherited contexts,
//! checking that every request completes exactly once: no event lost, none duplicated, none
//! foreign, and every buffer handed back exactly once.
//!
//! Each context has an owner thread, which submits and reaps (context 0 from the ring in user
//! space, context 1 by `io_getevents`), and a helper thread that only submits (through the
//! shared `Submitter`) and gets its completions from the owner. A request's slot holds its
//! iocb and buffer; its state word is the generation in flight (0: free), set before
//! `io_submit` and moved back to 0 by exactly one completion (a compare-exchange, whose failure
//! is a duplicate).
//!
//! `LINUX_AIO_SOAK_REQUESTS` sets the number of requests (default 1,000,000: a second or two on the
//! host; the default run also stops submitting after 20 s, for slow emulated guests);
//! `cargo xtask soak` runs 10 million in a release build.

#[path = "support/runner.rs"]
mod runner;
#[path = "support/scratch.rs"]
mod scratch;
#[path = "support/thread.rs"]
mod thread;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

use linux_aio::raw::{iocb, IOCB_CMD_POLL, IOCB_CMD_PREAD, IOCB_CMD_PWRITE};
use linux_aio::{Cancel, Context, Errno, Event, SubmitError, Submitter};
use runner::{skipped, Outcome, Passed};
use scratch::{eventfd, Scratch};

const SIGUSR1: i32 = 10;
const THREADS_PER_CONTEXT: usize = 2;
const SLOTS: usize = 32;
const BLOCK: usize = 4096;
const BLOCKS: u64 = 256;
const DEFAULT_REQUESTS: u64 = 1_000_000;

fn main() {
    runner::run("soak", &[("mixed_requests_threads_forks_signals", soak)])
}

/// One request slot: its iocb (whose address is the completion's `obj`), its buffer, and the
/// generation in flight (0 when free).
struct Slot {
    cb: std::cell::UnsafeCell<iocb>,
    buf: std::cell::UnsafeCell<[u8; BLOCK]>,
    state: AtomicU64,
    kind: std::cell::Cell<Kind>,
    completions: AtomicU64,
}

// SAFETY: `cb`, `buf` and `kind` are written only by the slot's own thread while the slot is
// free (state 0), and read by the reaping thread only between the kernel's completion and its
// store of 0 (Release), which orders those reads before the owner's next writes (Acquire).
unsafe impl Sync for Slot {}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Read(u64),
    Write,
    ReadyPoll,
    PendingPoll,
}

/// A thread's slots and counters.
struct Pool {
    slots: Vec<Slot>,
    submitted: AtomicU64,
}

impl Pool {
    fn new() -> Pool {
        Pool {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    cb: std::cell::UnsafeCell::new(iocb::default()),
                    buf: std::cell::UnsafeCell::new([0; BLOCK]),
                    state: AtomicU64::new(0),
                    kind: std::cell::Cell::new(Kind::Write),
                    completions: AtomicU64::new(0),
                })
                .collect(),
            submitted: AtomicU64::new(0),
        }
    }
}

/// What a run found wrong (empty: nothing).
static PROBLEMS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
static SIGNALS: AtomicU64 = AtomicU64::new(0);
static EINTRS: AtomicU64 = AtomicU64::new(0);
/// Set when the default run reaches its time limit: the threads stop submitting.
static TIME_UP: AtomicBool = AtomicBool::new(false);
/// The longest time a thread waited with every slot in flight and nothing completing (ms).
/// On a loaded machine this is dominated by cancelled polls, whose completion the kernel
/// leaves to a workqueue: seconds have been seen here.
static LONGEST_WAIT: AtomicU64 = AtomicU64::new(0);
/// How long a thread may see nothing complete before that is a failure.
const STALL: Duration = Duration::from_secs(60);

fn problem(what: String) {
    let mut p = PROBLEMS.lock().unwrap();
    if p.len() < 20 {
        p.push(what);
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Relaxed);
}

/// The byte at the start of block `b` of the data file.
fn block_byte(b: u64) -> u8 {
    (b as u8).wrapping_mul(37) ^ 0x5a
}

fn user_data(thread: usize, slot: usize, generation: u64) -> u64 {
    ((thread as u64) << 56) | ((slot as u64) << 40) | generation
}

struct Files {
    data: Scratch,
    writes: Scratch,
    ready: OwnedFd,
    never: OwnedFd,
}

/// Decodes one completion of context `ctx_index`: finds the slot, checks it was in flight
/// with that generation, checks the result, and frees the slot (exactly once).
fn complete(pools: &[Pool], ev: &Event, completed: &AtomicU64) {
    let data = ev.user_data();
    let (thread, slot, generation) = (
        (data >> 56) as usize,
        ((data >> 40) & 0xffff) as usize,
        data & ((1 << 40) - 1),
    );
    let Some(s) = pools.get(thread).and_then(|p| p.slots.get(slot)) else {
        return problem(format!("foreign event {ev:?}"));
    };
    if ev.iocb_address() != s.cb.get() as u64 {
        return problem(format!("event {ev:?} names another iocb"));
    }
    if s.state.load(Acquire) != generation {
        return problem(format!("duplicate or stale event {ev:?}"));
    }
    let res = ev.result();
    let ok = match s.kind.get() {
        Kind::Read(block) => {
            // SAFETY: the slot is in flight with this generation and its request is complete:
            // nobody writes the buffer until the store of 0 below.
            let buf = unsafe { &*s.buf.get() };
            res == Ok(BLOCK) && buf[0] == block_byte(block) && buf[BLOCK - 1] == block_byte(block)
        }
        Kind::Write => res == Ok(BLOCK),
        Kind::ReadyPoll => res.is_ok_and(|m| m & 1 != 0),
        Kind::PendingPoll => res == Ok(0), // cancelled
    };
    if !ok {
        problem(format!("{:?} completed with {res:?}", s.kind.get()));
    }
    s.completions.fetch_add(1, Relaxed);
    if s.state
        .compare_exchange(generation, 0, Release, Relaxed)
        .is_err()
    {
        problem(format!("slot freed twice by {ev:?}"));
    }
    completed.fetch_add(1, Relaxed);
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A thread's submission loop: batches of 1..=8 requests into free slots, cancelling the
/// pending polls it left behind, until `quota` requests are submitted. With `reap`, it also
/// reaps the context (the owner); otherwise it waits for the owner to free its slots.
#[allow(clippy::too_many_arguments)]
fn worker(
    index: usize,
    pools: &[Pool],
    submitter: Submitter<'_>,
    mut reap: Option<&mut dyn FnMut(bool) -> usize>,
    files: &Files,
    quota: u64,
    forks: &AtomicU64,
    fork_every: u64,
) {
    let me = &pools[index % THREADS_PER_CONTEXT];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
    let mut generation = 1u64;
    let mut pending: Vec<usize> = Vec::new();
    let mut next_fork = fork_every;
    let mut submitted = 0u64;
    let mut idle = Instant::now();
    let mut quota = quota;
    while submitted < quota || !pending.is_empty() {
        if TIME_UP.load(Relaxed) {
            quota = quota.min(submitted);
        }
        // Cancel what waits for ever (they complete with res 0, through the ring).
        let full = me.slots.iter().all(|s| s.state.load(Acquire) != 0);
        if pending.len() > 4 || submitted >= quota || full {
            for slot in pending.drain(..) {
                let cb = me.slots[slot].cb.get();
                match submitter.cancel(cb) {
                    Ok(Cancel::InProgress) => {}
                    // Already cancelled and completed meanwhile? Not for a poll that cannot
                    // complete: only a cancel completes it.
                    other => problem(format!("cancel of a pending poll gave {other:?}")),
                }
            }
        }
        let mut batch: [*mut iocb; 8] = [std::ptr::null_mut(); 8];
        let mut picked = [0usize; 8];
        let want = ((rng.next() % 8) + 1).min(quota.saturating_sub(submitted)) as usize;
        let mut n = 0;
        for (i, s) in me.slots.iter().enumerate() {
            if n == want {
                break;
            }
            if s.state.load(Acquire) != 0 {
                continue;
            }
            generation += 1;
            let r = rng.next();
            let (kind, cb) = match r % 100 {
                0..40 => {
                    let block = (r >> 8) % BLOCKS;
                    (
                        Kind::Read(block),
                        iocb {
                            aio_lio_opcode: IOCB_CMD_PREAD,
                            aio_fildes: files.data.fd(),
                            aio_buf: s.buf.get() as u64,
                            aio_nbytes: BLOCK as u64,
                            aio_offset: (block * BLOCK as u64) as i64,
                            ..Default::default()
                        },
                    )
                }
                40..65 => (
                    Kind::Write,
                    iocb {
                        aio_lio_opcode: IOCB_CMD_PWRITE,
                        aio_fildes: files.writes.fd(),
                        aio_buf: s.buf.get() as u64,
                        aio_nbytes: BLOCK as u64,
                        aio_offset: ((index as u64 * SLOTS as u64 + i as u64) * BLOCK as u64)
                            as i64,
                        ..Default::default()
                    },
                ),
                65..85 => (Kind::ReadyPoll, poll_iocb(files.ready.as_raw_fd())),
                _ => (Kind::PendingPoll, poll_iocb(files.never.as_raw_fd())),
            };
            s.kind.set(kind);
            // SAFETY: the slot is free (state 0) and only this thread fills its slots.
            unsafe {
                *s.cb.get() = iocb {
                    aio_data: user_data(index % THREADS_PER_CONTEXT, i, generation),
                    ..cb
                };
            }
            // In flight before io_submit: the completion can arrive before it returns.
            s.state.store(generation, Release);
            batch[n] = s.cb.get();
            picked[n] = i;
            n += 1;
        }
        if n > 0 {
            // SAFETY: every iocb names its slot's buffer (or no memory, for polls), which is
            // not touched until the request's completion frees the slot; the slots live in
            // `pools`, which outlives every thread and every request (all reaped below).
            let accepted = match unsafe { submitter.submit_raw(batch.as_mut_ptr(), n) } {
                Ok(k) => k,
                Err(SubmitError { submitted, error }) => {
                    if error != Errno::AGAIN {
                        problem(format!("io_submit: {error}"));
                    }
                    submitted
                }
            };
            for &i in &picked[accepted..n] {
                me.slots[i].state.store(0, Release);
            }
            for &i in &picked[..accepted] {
                if me.slots[i].kind.get() == Kind::PendingPoll {
                    pending.push(i);
                }
            }
            submitted += accepted as u64;
            me.submitted.fetch_add(accepted as u64, Relaxed);
        }
        let reaped = match reap.as_mut() {
            Some(reap) => reap(n == 0),
            None => {
                if n == 0 {
                    // Every slot in flight: let the owner (and the kernel's workers) run.
                    std::thread::sleep(Duration::from_micros(200));
                }
                0
            }
        };
        if n > 0 || reaped > 0 {
            idle = Instant::now();
        } else if idle.elapsed() > STALL {
            let stuck: Vec<String> = me
                .slots
                .iter()
                .filter(|s| s.state.load(Acquire) != 0)
                .map(|s| format!("{:?}/{:?}", s.kind.get(), submitter.cancel(s.cb.get())))
                .collect();
            problem(format!(
                "thread {index}: nothing completed for {STALL:?}; in flight (and what a second \
                 io_cancel says): {}",
                stuck.join(" ")
            ));
            return;
        } else if n == 0 && reaped == 0 {
            LONGEST_WAIT.fetch_max(idle.elapsed().as_millis() as u64, Relaxed);
        }
        if reap.is_some() && fork_every > 0 && submitted >= next_fork {
            next_fork += fork_every;
            fork_and_check(submitter);
            forks.fetch_add(1, Relaxed);
        }
    }
}

fn poll_iocb(fd: i32) -> iocb {
    iocb {
        aio_lio_opcode: IOCB_CMD_POLL,
        aio_fildes: fd as u32,
        aio_buf: libc::POLLIN as u64,
        ..Default::default()
    }
}

/// Forks a child that must be refused everything on the inherited context and must not take
/// any of its completions; the parent's checks (no event lost) cover the latter.
fn fork_and_check(submitter: Submitter<'_>) {
    // SAFETY: the child only makes system calls (no allocation, no lock) and leaves with
    // _exit; fork in a multi-threaded process is safe under those rules.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut cb = poll_iocb(0);
        let mut list = [&mut cb as *mut iocb];
        // SAFETY: a poll names no memory; the kernel refuses the child anyway.
        let submit = unsafe { submitter.submit_raw(list.as_mut_ptr(), 1) };
        let ok = submit.is_err_and(|e| e.error == Errno::INVAL)
            && submitter.cancel(&cb) == Err(Errno::INVAL);
        // SAFETY: ends the child without running anything of the parent's.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    assert!(pid > 0, "fork");
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        problem(format!(
            "a forked child was not refused (status {status:#x})"
        ));
    }
}

fn soak() -> Outcome {
    let asked: Option<u64> = std::env::var("LINUX_AIO_SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok());
    let requests = asked.unwrap_or(DEFAULT_REQUESTS);
    let time_limit = asked.is_none().then_some(Duration::from_secs(20));
    let mut contexts = Vec::new();
    for reaping in [true, false] {
        match Context::new(256) {
            Ok(mut c) => {
                c.set_user_space_reaping(reaping);
                contexts.push(c);
            }
            Err(Errno::NOSYS) => return skipped("kernel AIO unavailable: io_setup gives ENOSYS"),
            Err(e) => panic!("io_setup: {e}"),
        }
    }
    let files = Files {
        data: Scratch::new("soak-data"),
        writes: Scratch::new("soak-writes"),
        ready: eventfd(),
        never: eventfd(),
    };
    rustix::io::write(&files.ready, &1u64.to_ne_bytes()).unwrap();
    let mut content = vec![0u8; BLOCK * BLOCKS as usize];
    for (b, block) in content.chunks_mut(BLOCK).enumerate() {
        block.fill(block_byte(b as u64));
    }
    rustix::io::write(&files.data.file, &content).unwrap();

    // SAFETY: a handler that only increments an atomic counter; no SA_RESTART, so blocking
    // waits see EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }

    let pools: Vec<[Pool; THREADS_PER_CONTEXT]> =
        (0..2).map(|_| [Pool::new(), Pool::new()]).collect();
    let completed: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
    let forks = AtomicU64::new(0);
    let storm_over = AtomicBool::new(false);
    let threads_done = AtomicUsize::new(0);
    let helper_finished = [AtomicBool::new(false), AtomicBool::new(false)];
    // A worker that has finished waits for the storm to end before its thread exits, so that
    // no signal is ever sent to a thread that is gone.
    let finish = || {
        threads_done.fetch_add(1, Release);
        while !storm_over.load(Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let quota = requests / 4;
    let knob = |name: &str| std::env::var_os(name).is_some();
    let fork_every = if knob("LINUX_AIO_SOAK_NO_FORKS") {
        0
    } else {
        (quota / 25).max(1000)
    };
    let storm = !knob("LINUX_AIO_SOAK_NO_SIGNALS");
    let started = Instant::now();
    std::thread::scope(|t| {
        let (tx, rx) = std::sync::mpsc::channel::<thread::Thread>();
        for (c, ctx) in contexts.iter_mut().enumerate() {
            let ring_at = ctx.id() as usize;
            let (submitter, mut reaper) = ctx.split();
            let (pools, completed, files, forks) = (&pools[c], &completed[c], &files, &forks);
            let (helper_tx, owner_tx) = (tx.clone(), tx.clone());
            let (helper_finished, finish) = (&helper_finished[c], &finish);
            t.spawn(move || {
                helper_tx.send(thread::Thread::current()).unwrap();
                worker(1 + 2 * c, pools, submitter, None, files, quota, forks, 0);
                helper_finished.store(true, Release);
                finish();
            });
            t.spawn(move || {
                owner_tx.send(thread::Thread::current()).unwrap();
                let mut events = [Event::default(); 64];
                let mut reap = |idle: bool| -> usize {
                    let min = usize::from(idle);
                    match reaper.wait(&mut events, min, Some(Duration::from_millis(5))) {
                        Ok(n) => {
                            for ev in &events[..n] {
                                complete(pools, ev, completed);
                            }
                            n
                        }
                        Err(Errno::INTR) => {
                            EINTRS.fetch_add(1, Relaxed);
                            0
                        }
                        Err(e) => {
                            problem(format!("wait: {e}"));
                            0
                        }
                    }
                };
                worker(
                    2 * c,
                    pools,
                    submitter,
                    Some(&mut reap),
                    files,
                    quota,
                    forks,
                    fork_every,
                );
                // The helper's requests still in flight: reap until every slot is free.
                let deadline = Instant::now() + STALL;
                let busy = |p: &Pool| p.slots.iter().any(|s| s.state.load(Acquire) != 0);
                while !helper_finished.load(Acquire) || pools.iter().any(busy) {
                    if Instant::now() > deadline {
                        // SAFETY: the context is live (destroyed after the threads end); its ring
                        // header is mapped at its id. Read for the report only.
                        let h = unsafe {
                            std::ptr::read_volatile(ring_at as *const linux_aio::raw::aio_ring)
                        };
                        problem(format!(
                            "context {c}: requests never completed (lost events); ring head {} \
                             tail {} nr {}",
                            h.head, h.tail, h.nr
                        ));
                        break;
                    }
                    reap(true);
                }
                finish();
            });
        }
        drop(tx);
        let workers: Vec<thread::Thread> = rx.iter().take(4).collect();
        // The storm: a signal at one of the four threads every 50 µs or so, until they end.
        let mut k = 0usize;
        while threads_done.load(Acquire) < 4 {
            if storm {
                // Every worker thread is alive until storm_over is set (see `finish`).
                workers[k % 4].signal(SIGUSR1);
            }
            k += 1;
            std::thread::sleep(Duration::from_micros(50));
            if time_limit.is_some_and(|l| started.elapsed() > l) {
                TIME_UP.store(true, Relaxed);
            }
        }
        storm_over.store(true, Release);
    });
    let elapsed = started.elapsed();
    let submitted: u64 = pools
        .iter()
        .flatten()
        .map(|p| p.submitted.load(Relaxed))
        .sum();
    let done: u64 = completed.iter().map(|c| c.load(Relaxed)).sum();
    let per_slot: u64 = pools
        .iter()
        .flatten()
        .flat_map(|p| &p.slots)
        .map(|s| s.completions.load(Relaxed))
        .sum();
    println!(
        "    {submitted} requests in {:.2} s ({:.0}/s), {} forks, {} signals, {} EINTR; \
         longest wait with every slot in flight {} ms",
        elapsed.as_secs_f64(),
        submitted as f64 / elapsed.as_secs_f64(),
        forks.load(Relaxed),
        SIGNALS.load(Relaxed),
        EINTRS.load(Relaxed),
        LONGEST_WAIT.load(Relaxed)
    );
    let problems = PROBLEMS.lock().unwrap().clone();
    assert!(problems.is_empty(), "problems:\n{}", problems.join("\n"));
    if TIME_UP.load(Relaxed) {
        println!("    (stopped submitting at the default run's time limit)");
    } else {
        assert_eq!(submitted, requests - requests % 4, "submitted");
    }
    assert_eq!(done, submitted, "completions");
    assert_eq!(per_slot, submitted, "buffers handed back");
    assert!(forks.load(Relaxed) > 0 || fork_every == 0);
    assert!(SIGNALS.load(Relaxed) > 0 || !storm);
    // Nothing left behind in either ring.
    for ctx in &mut contexts {
        let mut events = [Event::default(); 4];
        assert_eq!(
            ctx.wait(&mut events, 0, Some(Duration::from_millis(20))),
            Ok(0)
        );
    }
    for ctx in contexts {
        ctx.destroy().unwrap();
    }
    Passed
}
