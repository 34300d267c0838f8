//! The async rows (issue 13): random 4 KiB reads at a queue depth, as an async program would do
//! them, on one tokio current-thread runtime kept for the whole run.
//!
//! - linux-aio-async: `qd` tasks, each `let (res, buf) = file.read_at(buf, offset).await` in a
//!   loop, its buffer handed back and reused; the driver's task submits what the tasks queued
//!   with one `io_submit` per wake-up and reaps the ring.
//! - tokio::fs style: `qd` tasks, each `spawn_blocking(move || pread)` per read, the buffer moved
//!   into the closure and back: what `tokio::fs` does for every operation (it has no positional
//!   read of its own).
//!
//! - tokio-uring: the same loop as linux-aio-async, on tokio-uring's runtime (io_uring).
//!
//! All run their `qd` tasks from a fresh spawn per sample; every task does every `qd`-th read
//! of the offset table. The time covers the spawns; the allocation count starts once the
//! tasks are spawned (each spawn allocates its task, `qd` per sample, not per request), so it
//! counts exactly what the requests themselves allocate.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use linux_aio_async::{AlignedBuf, File};

use crate::alloc;
use crate::data::BLOCK;
use crate::measure::{Measure, Sample};

type Result<T> = std::result::Result<T, String>;

/// What every async loop needs: the offsets, where to start, how many reads.
pub struct Job {
    pub offsets: Arc<Vec<u64>>,
    pub qd: usize,
    pub start: usize,
    pub total: u64,
}

impl Job {
    /// The reads task `t` of `qd` does: indices t, t + qd, ... below `total`.
    fn share(&self, t: usize) -> u64 {
        let (qd, total) = (self.qd as u64, self.total);
        total / qd + u64::from((t as u64) < total % qd)
    }
}

/// One aligned 4 KiB buffer per task, kept between samples.
pub fn buffers(n: usize) -> Vec<AlignedBuf> {
    (0..n).map(|_| AlignedBuf::new(BLOCK).unwrap()).collect()
}

pub fn reads(
    rt: &tokio::runtime::Runtime,
    file: &File,
    job: &Job,
    bufs: &mut Vec<AlignedBuf>,
) -> Result<Sample> {
    let taken: Vec<AlignedBuf> = bufs.drain(..job.qd).collect();
    let mut back = Vec::with_capacity(job.qd);
    let before = alloc::count();
    let m = Measure::start();
    let spawned = rt.block_on(async {
        let tasks: Vec<_> = taken
            .into_iter()
            .enumerate()
            .map(|(t, mut buf)| {
                let (file, offsets, n) = (file.clone(), job.offsets.clone(), job.share(t));
                let (qd, start, mask) = (job.qd, job.start, job.offsets.len() - 1);
                tokio::spawn(async move {
                    for k in 0..n as usize {
                        let offset = offsets[(start + t + k * qd) & mask];
                        let (res, b) = file.read_at(buf, offset).await;
                        buf = b;
                        match res {
                            Ok(BLOCK) => {}
                            other => return Err(format!("read completed with {other:?}")),
                        }
                    }
                    Ok(buf)
                })
            })
            .collect();
        let spawned = alloc::count();
        for t in tasks {
            back.push(t.await.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>(spawned)
    });
    let mut sample = m.stop(job.total);
    bufs.append(&mut back);
    sample.allocs -= spawned? - before;
    Ok(sample)
}

pub fn tokio_fs_reads(
    rt: &tokio::runtime::Runtime,
    file: &Arc<std::fs::File>,
    job: &Job,
    bufs: &mut Vec<AlignedBuf>,
) -> Result<Sample> {
    let taken: Vec<AlignedBuf> = bufs.drain(..job.qd).collect();
    let mut back = Vec::with_capacity(job.qd);
    let before = alloc::count();
    let m = Measure::start();
    let spawned = rt.block_on(async {
        let tasks: Vec<_> = taken
            .into_iter()
            .enumerate()
            .map(|(t, mut buf)| {
                let (file, offsets, n) = (file.clone(), job.offsets.clone(), job.share(t));
                let (qd, start, mask) = (job.qd, job.start, job.offsets.len() - 1);
                tokio::spawn(async move {
                    for k in 0..n as usize {
                        let offset = offsets[(start + t + k * qd) & mask];
                        let f = file.clone();
                        let (res, b) = tokio::task::spawn_blocking(move || {
                            let res = f.read_at(&mut buf, offset);
                            (res, buf)
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                        buf = b;
                        match res {
                            Ok(BLOCK) => {}
                            other => return Err(format!("read completed with {other:?}")),
                        }
                    }
                    Ok(buf)
                })
            })
            .collect();
        let spawned = alloc::count();
        for t in tasks {
            back.push(t.await.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>(spawned)
    });
    let mut sample = m.stop(job.total);
    bufs.append(&mut back);
    sample.allocs -= spawned? - before;
    Ok(sample)
}

/// An `AlignedBuf` for tokio-uring's buffer traits (both foreign: a local wrapper).
pub struct UringBuf(pub AlignedBuf);

// SAFETY: the bytes live in the AlignedBuf's own allocation, which never moves and stays
// until drop; all of them are initialised.
unsafe impl tokio_uring::buf::IoBuf for UringBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.0.len()
    }
    fn bytes_total(&self) -> usize {
        self.0.len()
    }
}

// SAFETY: as above; any bytes are valid, and all are initialised already.
unsafe impl tokio_uring::buf::IoBufMut for UringBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

pub fn uring_reads(
    rt: &tokio_uring::Runtime,
    file: &std::rc::Rc<tokio_uring::fs::File>,
    job: &Job,
    bufs: &mut Vec<AlignedBuf>,
) -> Result<Sample> {
    let taken: Vec<AlignedBuf> = bufs.drain(..job.qd).collect();
    let mut back = Vec::with_capacity(job.qd);
    let before = alloc::count();
    let m = Measure::start();
    let spawned = rt.block_on(async {
        let tasks: Vec<_> = taken
            .into_iter()
            .enumerate()
            .map(|(t, buf)| {
                let (file, offsets, n) = (file.clone(), job.offsets.clone(), job.share(t));
                let (qd, start, mask) = (job.qd, job.start, job.offsets.len() - 1);
                tokio_uring::spawn(async move {
                    let mut buf = UringBuf(buf);
                    for k in 0..n as usize {
                        let offset = offsets[(start + t + k * qd) & mask];
                        let (res, b) = file.read_at(buf, offset).await;
                        buf = b;
                        match res {
                            Ok(BLOCK) => {}
                            other => return Err(format!("read completed with {other:?}")),
                        }
                    }
                    Ok(buf.0)
                })
            })
            .collect();
        let spawned = alloc::count();
        for t in tasks {
            back.push(t.await.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>(spawned)
    });
    let mut sample = m.stop(job.total);
    bufs.append(&mut back);
    sample.allocs -= spawned? - before;
    Ok(sample)
}
