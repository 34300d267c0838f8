//! Copies a file with O_DIRECT reads and writes, 32 requests in flight (QD32) by default:
//!
//! ```sh
//! cargo run --release -p linux-aio-async --features tokio --example copy -- SRC DST [--qd N] [--block BYTES]
//! ```
//!
//! Each of `qd` tasks takes the next block, reads it into its own aligned buffer and writes it
//! out, so up to `qd` reads and writes are in flight at once. O_DIRECT needs aligned offsets and
//! lengths (`dio_alignment`): the last, partial block is written padded to the alignment, and
//! the file is then truncated to the source's length.

use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use linux_aio_async::{dio_alignment, AlignedBuf, Driver, File};

fn usage() -> ! {
    eprintln!("usage: copy SRC DST [--qd N] [--block BYTES]");
    std::process::exit(2)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut qd, mut block) = (32usize, 1usize << 20);
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match a.as_str() {
            "--qd" => qd = number().max(1),
            "--block" => block = number(),
            _ => paths.push(a.clone()),
        }
    }
    let [src, dst] = &paths[..] else { usage() };
    let input = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(src)?;
    let output = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(dst)?;
    let size = input.metadata()?.len();
    let align = dio_alignment(&input)?
        .offset
        .max(dio_alignment(&output)?.offset);
    let mem_align = dio_alignment(&input)?
        .memory
        .max(dio_alignment(&output)?.memory);
    if block == 0 || block % align != 0 {
        eprintln!("--block must be a multiple of the O_DIRECT alignment ({align})");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    rt.block_on(async {
        let driver = Driver::new(2 * qd as u32)?;
        driver.spawn_tokio()?;
        let (input, output) = (File::new(&driver, input), File::new(&driver, output));
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..qd {
            let (input, output, next) = (input.clone(), output.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut buf = AlignedBuf::with_alignment(block, mem_align.max(512)).unwrap();
                loop {
                    let offset = next.fetch_add(block as u64, Ordering::Relaxed);
                    if offset >= size {
                        return Ok::<(), std::io::Error>(());
                    }
                    let (res, b) = input.read_at(buf, offset).await;
                    let n = res?;
                    let (res, b) = if n == block {
                        output.write_at(b, offset).await
                    } else {
                        // The tail: write it padded to the alignment (truncated below).
                        let padded = n.div_ceil(align) * align;
                        let mut tail = AlignedBuf::with_alignment(padded, mem_align.max(512))
                            .expect("tail buffer");
                        tail[..n].copy_from_slice(&b[..n]);
                        let (res, _) = output.write_at(tail, offset).await;
                        (res.map(|_| n), b)
                    };
                    res?;
                    buf = b;
                }
            }));
        }
        for t in tasks {
            t.await.expect("copy task")?;
        }
        output.sync_all().await?;
        Ok::<(), std::io::Error>(())
    })?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(dst)?
        .set_len(size)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "copied {size} bytes in {secs:.3} s ({:.1} MiB/s), QD{qd}, {block}-byte blocks, O_DIRECT",
        size as f64 / secs / (1 << 20) as f64
    );
    Ok(())
}
