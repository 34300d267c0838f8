//! This crate's competitors, written the way a performance-minded user would write them.
//!
//! - Direct API: POLLs are `Request`s built once and resubmitted with `unsafe Context::submit`;
//!   reads are `iocb`s (made by `Request::read`) whose offset changes each time, submitted with
//!   `unsafe Context::submit_raw`; completions go into one reused `[Event; N]` with
//!   `Context::wait`. Reaping from the ring or through `io_getevents` is the context's setting.
//! - Scoped API: `Context::scope` with `Scope::prepare` + `Scope::submit_prepared` and
//!   `Scope::wait`, buffers handed back by each completion and resubmitted: no `unsafe`.
//!
//! Every loop checks each result, as the C loops do, and measures only the loop itself.

use std::os::fd::BorrowedFd;

use linux_aio::raw::iocb;
use linux_aio::{Buffer, Context, Event, Request};
use rustix::event::PollFlags;

use crate::data::{AlignedBuf, BLOCK};
use crate::measure::{Measure, Sample};

type Result<T> = std::result::Result<T, String>;

fn failed(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// `rounds` round trips of `batch` always-ready POLLs: one submit, then wait for all of them.
pub fn poll(
    ctx: &mut Context,
    efd: BorrowedFd<'_>,
    batch: usize,
    rounds: u64,
    events: &mut [Event],
) -> Result<Sample> {
    let mut requests: Vec<Request<'_>> = (0..batch)
        .map(|i| Request::poll(efd, PollFlags::IN).user_data(i as u64))
        .collect();
    let mut list: Vec<&mut Request<'_>> = requests.iter_mut().collect();
    let events = &mut events[..batch];
    let m = Measure::start();
    for _ in 0..rounds {
        // SAFETY: a POLL names no buffer; the eventfd outlives the loop, and every request is
        // reaped below before the next round (and before returning).
        unsafe { ctx.submit(&mut list) }.map_err(|e| failed("submit", e))?;
        let mut got = 0;
        while got < batch {
            got += ctx
                .wait(&mut events[got..], batch - got, None)
                .map_err(|e| failed("wait", e))?;
        }
        for e in events.iter() {
            if !matches!(e.result(), Ok(mask) if mask > 0) {
                return Err(format!("poll completed with {:?}", e.result()));
            }
        }
    }
    Ok(m.stop(rounds * batch as u64))
}

/// [`poll`] through the scoped API, with a scope of exactly `batch` slots.
pub fn poll_scoped(
    ctx: &mut Context,
    efd: BorrowedFd<'_>,
    batch: usize,
    rounds: u64,
) -> Result<Sample> {
    match batch {
        1 => poll_scoped_n::<1>(ctx, efd, rounds),
        8 => poll_scoped_n::<8>(ctx, efd, rounds),
        32 => poll_scoped_n::<32>(ctx, efd, rounds),
        128 => poll_scoped_n::<128>(ctx, efd, rounds),
        _ => Err(format!("no scoped POLL loop for batch {batch}")),
    }
}

fn poll_scoped_n<const N: usize>(
    ctx: &mut Context,
    efd: BorrowedFd<'_>,
    rounds: u64,
) -> Result<Sample> {
    ctx.scope::<N, _>(|s| {
        let m = Measure::start();
        for _ in 0..rounds {
            for i in 0..N {
                s.prepare(Request::poll(efd, PollFlags::IN).user_data(i as u64))
                    .map_err(|r| failed("prepare", r.error))?;
            }
            s.submit_prepared().map_err(|e| failed("submit", e))?;
            let mut got = 0;
            while got < N {
                for done in s.wait(N - got, None).map_err(|e| failed("wait", e))? {
                    if !matches!(done.event.result(), Ok(mask) if mask > 0) {
                        return Err(format!("poll completed with {:?}", done.event.result()));
                    }
                    got += 1;
                }
            }
        }
        Ok(m.stop(rounds * N as u64))
    })
}

/// Random 4 KiB reads: what `c/bench.h` calls a reads job, through the direct API.
pub struct Reads<'a> {
    pub fd: BorrowedFd<'a>,
    pub qd: usize,
    pub offsets: &'a [u64],
    pub start: usize,
    pub total: u64,
}

impl Reads<'_> {
    fn offset(&self, i: usize) -> u64 {
        self.offsets[i & (self.offsets.len() - 1)]
    }
}

/// Keeps `qd` reads in flight until `total` have completed: wait for at least one, resubmit as
/// many as completed with one `submit_raw`.
pub fn reads(
    ctx: &mut Context,
    job: &Reads<'_>,
    bufs: &mut AlignedBuf,
    events: &mut [Event],
) -> Result<Sample> {
    let qd = job.qd;
    let events = &mut events[..qd];
    // The iocbs are built by `Request::read` and kept; only their offsets change.
    let mut cbs: Vec<iocb> = bufs
        .as_mut_slice()
        .chunks_exact_mut(BLOCK)
        .take(qd)
        .enumerate()
        .map(|(i, buf)| *Request::read(job.fd, buf, 0).user_data(i as u64).iocb())
        .collect();
    let base = cbs.as_mut_ptr();
    let mut list: Vec<*mut iocb> = vec![std::ptr::null_mut(); qd];
    let mut next = job.start;
    let total = job.total;

    let m = Measure::start();
    let first = (qd as u64).min(total) as usize;
    for (slot, entry) in list.iter_mut().enumerate().take(first) {
        // SAFETY: slot < qd = cbs.len().
        let cb = unsafe { base.add(slot) };
        // SAFETY: `cb` points into `cbs`, which nothing else accesses during the loop.
        unsafe { (*cb).aio_offset = job.offset(next) as i64 };
        next += 1;
        *entry = cb;
    }
    // SAFETY: each iocb names its own 4 KiB of `bufs`, which outlives the loop and is not
    // touched until every read has been reaped (the loop reaps all it submits).
    unsafe { ctx.submit_raw(list.as_mut_ptr(), first) }.map_err(|e| failed("submit", e))?;
    let (mut submitted, mut done) = (first as u64, 0u64);
    while done < total {
        let n = ctx.wait(events, 1, None).map_err(|e| failed("wait", e))?;
        done += n as u64;
        let mut k = 0;
        for e in &events[..n] {
            if e.result() != Ok(BLOCK) {
                return Err(format!("read completed with {:?}", e.result()));
            }
            if submitted < total {
                let slot = e.user_data() as usize;
                if slot >= qd {
                    return Err(format!("unknown user data {slot}"));
                }
                // SAFETY: slot < qd; the read that used this iocb has completed.
                let cb = unsafe { base.add(slot) };
                // SAFETY: as above.
                unsafe { (*cb).aio_offset = job.offset(next) as i64 };
                next += 1;
                list[k] = cb;
                k += 1;
                submitted += 1;
            }
        }
        if k > 0 {
            // SAFETY: as for the first submission.
            unsafe { ctx.submit_raw(list.as_mut_ptr(), k) }.map_err(|e| failed("submit", e))?;
        }
    }
    Ok(m.stop(total))
}

/// [`reads`] through the scoped API: each completion hands its buffer back, and a new
/// `Request::read` takes it to the next offset.
pub fn reads_scoped(ctx: &mut Context, job: &Reads<'_>, bufs: &mut AlignedBuf) -> Result<Sample> {
    match job.qd {
        1 => reads_scoped_n::<1>(ctx, job, bufs),
        32 => reads_scoped_n::<32>(ctx, job, bufs),
        qd => Err(format!("no scoped read loop for queue depth {qd}")),
    }
}

fn reads_scoped_n<const N: usize>(
    ctx: &mut Context,
    job: &Reads<'_>,
    bufs: &mut AlignedBuf,
) -> Result<Sample> {
    let fd = job.fd;
    let total = job.total;
    let buffers = bufs.as_mut_slice().chunks_exact_mut(BLOCK).take(N);
    ctx.scope::<N, _>(|s| {
        let mut next = job.start;
        let m = Measure::start();
        let mut submitted = 0u64;
        for buf in buffers.take(N.min(total as usize)) {
            s.prepare(Request::read(fd, buf, job.offset(next)))
                .map_err(|r| failed("prepare", r.error))?;
            next += 1;
            submitted += 1;
        }
        s.submit_prepared().map_err(|e| failed("submit", e))?;
        let mut done = 0u64;
        while done < total {
            for c in s.wait(1, None).map_err(|e| failed("wait", e))? {
                done += 1;
                if c.event.result() != Ok(BLOCK) {
                    return Err(format!("read completed with {:?}", c.event.result()));
                }
                if submitted < total {
                    let Buffer::Read(buf) = c.buffer else {
                        return Err("a read's completion did not return its buffer".into());
                    };
                    s.prepare(Request::read(fd, buf, job.offset(next)))
                        .map_err(|r| failed("prepare", r.error))?;
                    next += 1;
                    submitted += 1;
                }
            }
            s.submit_prepared().map_err(|e| failed("submit", e))?;
        }
        Ok(m.stop(total))
    })
}

/// `iterations` times `Context::new(depth)` then drop (`io_destroy`), each half timed.
pub fn setup_teardown(depth: u32, iterations: u64) -> Result<Sample> {
    let mut sample = Sample {
        ops: iterations,
        ..Sample::default()
    };
    for _ in 0..iterations {
        let m = Measure::start();
        let ctx = Context::new(depth).map_err(|e| failed("Context::new", e))?;
        let setup = m.stop(1);
        let t = std::time::Instant::now();
        drop(ctx);
        sample.teardown_ns += t.elapsed().as_nanos() as u64;
        sample.wall_ns += setup.wall_ns;
        sample.cpu_ns += setup.cpu_ns;
        sample.allocs += setup.allocs;
    }
    Ok(sample)
}

/// Spins until `go` is set: the helper thread is spawned (which allocates) before the timed
/// loop starts, and released by it.
fn wait_for(go: &std::sync::atomic::AtomicBool) {
    while !go.load(std::sync::atomic::Ordering::Acquire) {
        std::hint::spin_loop();
    }
}

/// `total` always-ready POLLs from two threads, one request per `io_submit`, at most `cap`
/// in flight, through the direct API: each thread submits its own prebuilt `Request` with
/// `unsafe Submitter::submit` (an atomic counter keeps the cap), and this thread, which
/// submits the other half, reaps with the `Reaper`.
pub fn poll_threads(
    ctx: &mut Context,
    efd: BorrowedFd<'_>,
    cap: usize,
    total: u64,
) -> Result<Sample> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (submitter, mut reaper) = ctx.split();
    let in_flight = AtomicUsize::new(0);
    let go = AtomicBool::new(false);
    let theirs = total / 2;
    // Takes one of the `cap` places, or says there is none.
    let take = |in_flight: &AtomicUsize| {
        if in_flight.fetch_add(1, Ordering::Relaxed) < cap {
            true
        } else {
            in_flight.fetch_sub(1, Ordering::Relaxed);
            false
        }
    };
    std::thread::scope(|t| {
        let helper = t.spawn(|| -> Result<()> {
            let mut req = Request::poll(efd, PollFlags::IN);
            wait_for(&go);
            let mut sent = 0;
            while sent < theirs {
                if !take(&in_flight) {
                    std::thread::yield_now();
                    continue;
                }
                // SAFETY: a POLL names no buffer; the eventfd outlives the loop, and every
                // request is reaped by the main thread before this function returns.
                unsafe { submitter.submit(&mut [&mut req]) }.map_err(|e| failed("submit", e))?;
                sent += 1;
            }
            Ok(())
        });
        let mut req = Request::poll(efd, PollFlags::IN);
        let mut events = [Event::default(); 64];
        let m = Measure::start();
        go.store(true, Ordering::Release);
        let (mut sent, mut done) = (0, 0);
        while done < total {
            let mut submitted = false;
            if sent < total - theirs && take(&in_flight) {
                // SAFETY: as in the helper.
                unsafe { submitter.submit(&mut [&mut req]) }.map_err(|e| failed("submit", e))?;
                sent += 1;
                submitted = true;
            }
            // Reap what is ready; with nothing of its own to submit, wait for one (taken
            // places are requests submitted or about to be, which complete at once), or let
            // the other thread run.
            let n = if submitted {
                reaper.try_wait(&mut events)
            } else if in_flight.load(Ordering::Relaxed) > 0 {
                reaper.wait(&mut events, 1, None)
            } else {
                std::thread::yield_now();
                Ok(0)
            }
            .map_err(|e| failed("wait", e))?;
            for e in &events[..n] {
                if !matches!(e.result(), Ok(mask) if mask > 0) {
                    return Err(format!("poll completed with {:?}", e.result()));
                }
            }
            in_flight.fetch_sub(n, Ordering::Relaxed);
            done += n as u64;
        }
        let sample = m.stop(total);
        helper.join().map_err(|_| "helper panicked".to_string())??;
        Ok(sample)
    })
}

/// [`poll_threads`] through the shared scope: both threads `SharedScope::submit` a new
/// `Request::poll` (retrying while all `cap` slots are taken), and this thread reaps with the
/// `ScopeReaper`. No `unsafe`.
pub fn poll_shared(
    ctx: &mut Context,
    efd: BorrowedFd<'_>,
    cap: usize,
    total: u64,
) -> Result<Sample> {
    match cap {
        16 => poll_shared_n::<16>(ctx, efd, total),
        _ => Err(format!("no shared-scope loop for {cap} in flight")),
    }
}

fn poll_shared_n<const N: usize>(
    ctx: &mut Context,
    efd: BorrowedFd<'_>,
    total: u64,
) -> Result<Sample> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let go = AtomicBool::new(false);
    let theirs = total / 2;
    ctx.shared_scope::<N, _>(|s, mut reaper| {
        std::thread::scope(|t| {
            let helper = t.spawn(|| -> Result<()> {
                wait_for(&go);
                for _ in 0..theirs {
                    let mut req = Request::poll(efd, PollFlags::IN);
                    loop {
                        match s.submit(req) {
                            Ok(_) => break,
                            Err(r) if r.scope_full() => {
                                req = r.request;
                                std::thread::yield_now();
                            }
                            Err(r) => return Err(failed("submit", r.error)),
                        }
                    }
                }
                Ok(())
            });
            let m = Measure::start();
            go.store(true, Ordering::Release);
            let (mut sent, mut done) = (0, 0);
            while done < total {
                let mut submitted = false;
                if sent < total - theirs {
                    match s.submit(Request::poll(efd, PollFlags::IN)) {
                        Ok(_) => (sent, submitted) = (sent + 1, true),
                        Err(r) if r.scope_full() => {}
                        Err(r) => return Err(failed("submit", r.error)),
                    }
                }
                // As in `poll_threads`: wait for one when there is nothing to submit.
                let min = if submitted || s.in_flight() == 0 {
                    0
                } else {
                    1
                };
                if min == 0 && !submitted {
                    std::thread::yield_now();
                }
                for c in reaper
                    .wait(
                        min,
                        if min == 0 {
                            Some(std::time::Duration::ZERO)
                        } else {
                            None
                        },
                    )
                    .map_err(|e| failed("wait", e))?
                {
                    if !matches!(c.event.result(), Ok(mask) if mask > 0) {
                        return Err(format!("poll completed with {:?}", c.event.result()));
                    }
                    done += 1;
                }
            }
            let sample = m.stop(total);
            helper.join().map_err(|_| "helper panicked".to_string())??;
            Ok(sample)
        })
    })
}
