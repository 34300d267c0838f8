//! Random 4 KiB reads of a file, `qd` futures in flight, for a number of seconds:
//!
//! ```sh
//! cargo run --release -p linux-aio-async --features tokio --example randread -- FILE [--qd 32] [--direct] [--seconds 5] [--multi-thread]
//! ```
//!
//! Each of `qd` tasks reads a random block into its buffer, gets it back, and reads again. The
//! same loop, beside the synchronous API and `tokio::fs`, is in `cargo xtask bench`.

use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linux_aio_async::{AlignedBuf, Driver, File};

const BLOCK: usize = 4096;

fn usage() -> ! {
    eprintln!("usage: randread FILE [--qd N] [--direct] [--seconds S] [--multi-thread]");
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut qd, mut direct, mut seconds, mut multi) = (32usize, false, 5u64, false);
    let mut path = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--qd" => {
                qd = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--direct" => direct = true,
            "--multi-thread" => multi = true,
            p if path.is_none() => path = Some(p.to_string()),
            _ => usage(),
        }
    }
    let path = path.unwrap_or_else(|| usage());
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let std_file = options.open(&path)?;
    let blocks = (std_file.metadata()?.len() / BLOCK as u64).max(1);
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    let cpu = || {
        // SAFETY: an all-zero timespec is valid; clock_gettime only writes it.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `ts` is writable.
        unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    };
    let cpu_start = cpu();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    rt.block_on(async {
        let driver = Driver::new(qd.max(1) as u32)?;
        driver.spawn_tokio()?;
        let file = File::new(&driver, std_file);
        let tasks: Vec<_> = (0..qd)
            .map(|t| {
                let (file, done, stop) = (file.clone(), done.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                    let mut buf = AlignedBuf::new(BLOCK).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let (res, b) = file.read_at(buf, (rng % blocks) * BLOCK as u64).await;
                        res?;
                        buf = b;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), std::io::Error>(())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("read task")?;
        }
        Ok::<(), std::io::Error>(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let cpu_ns = (cpu() - cpu_start) * 1e9 / n.max(1) as f64;
    println!(
        "{n} reads in {secs:.2} s: {:.1} k IOPS, {cpu_ns:.0} ns CPU per read (QD{qd}, {}, {} runtime)",
        n as f64 / secs / 1e3,
        if direct { "O_DIRECT" } else { "buffered" },
        if multi {
            "multi-thread"
        } else {
            "current-thread"
        }
    );
    Ok(())
}
