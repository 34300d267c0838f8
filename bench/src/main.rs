//! `linux-aio-bench`: this crate against libaio, a hand-written C floor loop, io_uring and
//! pread, on the scenarios of issues 7 and 12. Run it through `cargo xtask bench [--quick] [--json]`.
//!
//! How a run goes:
//! 1. The 1 GiB test file is made once under `target/bench-data` and reused; it is read through
//!    once so that it sits in the page cache, and copied to `/dev/shm` (tmpfs) for the run.
//! 2. Every engine (this crate's context, libaio's, the floor's, an io_uring) is opened once.
//! 3. Each cell (a scenario at one batch size or queue depth) is calibrated on libaio so that one
//!    sample takes about `--sample-ms`, and every competitor runs it once to warm up.
//! 4. Repetitions: each runs every cell once, its competitors in an order rotated by one each
//!    repetition, so slow drifts of the machine hit all of them alike.
//! 5. Medians with min and max over the repetitions, as a table or as JSON (`--json`).
//!
//! Progress goes to stderr; stdout carries only the report.

mod alloc;
mod asyncs;
mod data;
mod ffi;
mod measure;
mod ours;
mod plan;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use plan::{Cell, Competitor, Engines, FileKind, Files, Scenario, Work};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

const USAGE: &str = "\
usage: linux-aio-bench [--quick] [--json] [--reps N] [--sample-ms MS]
                       [--only poll,buffered,direct,setup,threads] [--competitors KEY,...]
                       [--case CASE,...] [--data-dir DIR] [--count N]
  --quick         5 repetitions of ~25 ms samples (about 20 s) instead of 45 of ~40 ms
  --json          print the figures as JSON instead of tables
  --only          run only these scenarios: poll, buffered, direct, setup, threads
  --competitors   run only these competitors: linux-aio-ring, linux-aio-syscall,
                  linux-aio-scope, linux-aio-shared, libaio, c-floor, io_uring, pread,
                  linux-aio-async, tokio-fs, tokio-uring (the last three: QD32 reads)
  --case          run only the cells with these exact case names (\"batch 8\", \"ext4 QD32\")
  --data-dir      where the 1 GiB file is kept (default: target/bench-data)
  --count         a fixed number of rounds (POLL) or reads per sample instead of calibrating,
                  for profiling: the same work for every competitor and every run";

struct Options {
    json: bool,
    reps: usize,
    sample_ms: u64,
    setup_iterations: u64,
    scenarios: Vec<Scenario>,
    competitors: Vec<Competitor>,
    cases: Option<Vec<String>>,
    data_dir: PathBuf,
    fixed_count: Option<u64>,
    command: String,
}

fn parse_options() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options {
        json: false,
        // Many short samples rather than few long ones: on a shared VM single samples vary by
        // 10-20% (per-repetition ratios of 0.8-1.2 between two identical loops), mostly in
        // bursts that a median of more samples discards. 15 x 120 ms gave ratios of medians
        // that moved by 2-3% from run to run for two loops with the same code (the ring path
        // and the C floor); 45 x 40 ms, the same time per competitor, about half that.
        reps: 45,
        sample_ms: 40,
        setup_iterations: 4,
        scenarios: Scenario::ALL.to_vec(),
        competitors: Competitor::ALL.to_vec(),
        cases: None,
        data_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| PathBuf::from("target"), |root| root.join("target"))
            .join("bench-data"),
        fixed_count: None,
        command: std::iter::once("cargo xtask bench".to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let (mut reps, mut sample_ms) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--json" => o.json = true,
            "--quick" => {
                o.reps = 5;
                o.sample_ms = 25;
                o.setup_iterations = 2;
            }
            "--reps" => reps = Some(value()?.parse().map_err(|e| format!("--reps: {e}"))?),
            "--sample-ms" => {
                sample_ms = Some(value()?.parse().map_err(|e| format!("--sample-ms: {e}"))?)
            }
            "--data-dir" => o.data_dir = PathBuf::from(value()?),
            "--case" => o.cases = Some(value()?.split(',').map(str::to_string).collect()),
            "--count" => {
                o.fixed_count = Some(value()?.parse().map_err(|e| format!("--count: {e}"))?)
            }
            "--only" => {
                let v = value()?;
                o.scenarios = v
                    .split(',')
                    .map(|k| {
                        Scenario::ALL
                            .into_iter()
                            .find(|s| s.key() == k)
                            .ok_or(format!("unknown scenario {k:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--competitors" => {
                let v = value()?;
                o.competitors = v
                    .split(',')
                    .map(|k| {
                        Competitor::ALL
                            .into_iter()
                            .find(|c| c.key() == k)
                            .ok_or(format!("unknown competitor {k:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    o.reps = reps.unwrap_or(o.reps).max(1);
    o.sample_ms = sample_ms.unwrap_or(o.sample_ms).max(1);
    Ok(o)
}

fn main() {
    let opts = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match run(&opts) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("linux-aio-bench: {e}");
            std::process::exit(1);
        }
    }
}

fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

fn first_line(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The files of the read scenarios, and why any could not be had.
struct Prepared {
    files: Files,
    data_fs: String,
    tmpfs: Result<data::TmpfsCopy, String>,
    direct_error: Option<String>,
}

/// Makes (or finds) the 1 GiB file, warms the page cache, copies it to tmpfs and opens
/// everything; what cannot be prepared becomes a note and the affected cells' skip reason.
fn prepare_files(opts: &Options, notes: &mut Vec<String>) -> Result<Prepared, String> {
    let wants = |s| opts.scenarios.contains(&s);
    if !wants(Scenario::Buffered) && !wants(Scenario::Direct) {
        return Ok(Prepared {
            files: Files {
                disk: None,
                tmpfs: None,
                direct: None,
            },
            data_fs: "-".into(),
            tmpfs: Err("not run".into()),
            direct_error: None,
        });
    }
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| format!("create {}: {e}", opts.data_dir.display()))?;
    let (data_fs, _) = data::filesystem(&opts.data_dir);
    if data_fs != "ext4" {
        notes.push(format!(
            "{} is on {data_fs}, not ext4: the \"disk\" rows measure {data_fs}",
            opts.data_dir.display()
        ));
    }
    let t = Instant::now();
    let (path, made) = data::ensure_file(&opts.data_dir)?;
    if made {
        progress(&format!(
            "created {} in {:.1} s (kept for later runs)",
            path.display(),
            t.elapsed().as_secs_f64()
        ));
    }
    let mut probe = data::AlignedBuf::new(data::BLOCK);
    let disk = data::open_for_reads(&path, false, &mut probe)?;
    let t = Instant::now();
    data::warm_page_cache(&path)?;
    progress(&format!(
        "page cache warmed in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let tmpfs = if wants(Scenario::Buffered) {
        data::TmpfsCopy::make(&path)
    } else {
        Err("not run".into())
    };
    let tmpfs_file = match &tmpfs {
        Ok(copy) => Some(data::open_for_reads(&copy.path, false, &mut probe)?),
        Err(why) => {
            notes.push(format!("tmpfs rows skipped: {why}"));
            None
        }
    };
    let (direct, direct_error) = if wants(Scenario::Direct) {
        match data::open_for_reads(&path, true, &mut probe) {
            Ok(f) => (Some(f), None),
            Err(why) => {
                notes.push(format!("O_DIRECT rows skipped: {why}"));
                (None, Some(why))
            }
        }
    } else {
        (None, None)
    };
    Ok(Prepared {
        files: Files {
            disk: Some(disk),
            tmpfs: tmpfs_file,
            direct,
        },
        data_fs,
        tmpfs,
        direct_error,
    })
}

fn build_cells(opts: &Options, prep: &Prepared) -> Vec<Cell> {
    let pick = |list: &[Competitor]| -> Vec<Competitor> {
        list.iter()
            .copied()
            .filter(|c| opts.competitors.contains(c))
            .collect()
    };
    // Every synchronous competitor, then without the plain pread loop, which has no batches
    // or queue depth; the async rows run the QD32 read cells only. The shared scope has a
    // scenario of its own.
    let with_pread: Vec<Competitor> = Competitor::ALL
        .into_iter()
        .filter(|c| !c.is_async() && *c != Competitor::OursShared)
        .collect();
    let aio: Vec<Competitor> = with_pread
        .iter()
        .copied()
        .filter(|&c| c != Competitor::Pread)
        .collect();
    let aio_and_async: Vec<Competitor> = Competitor::ALL
        .into_iter()
        .filter(|&c| c != Competitor::Pread && c != Competitor::OursShared)
        .collect();
    let mut cells = Vec::new();
    for scenario in opts.scenarios.iter().copied() {
        match scenario {
            Scenario::Poll => {
                for batch in plan::BATCHES {
                    cells.push(Cell::new(
                        scenario,
                        format!("batch {batch}"),
                        Work::Poll { batch },
                        &pick(&aio),
                    ));
                }
            }
            Scenario::Buffered => {
                for (file, fs) in [
                    (FileKind::Disk, prep.data_fs.as_str()),
                    (FileKind::Tmpfs, "tmpfs"),
                ] {
                    for qd in plan::QUEUE_DEPTHS {
                        let list = if qd == 1 {
                            &with_pread[..]
                        } else {
                            &aio_and_async[..]
                        };
                        let mut cell = Cell::new(
                            scenario,
                            format!("{fs} QD{qd}"),
                            Work::Reads { file, qd },
                            &pick(list),
                        );
                        if file == FileKind::Tmpfs {
                            cell.skipped = prep.tmpfs.as_ref().err().cloned();
                        }
                        cells.push(cell);
                    }
                }
            }
            Scenario::Direct => {
                for qd in plan::QUEUE_DEPTHS {
                    let list = if qd == 1 {
                        &with_pread[..]
                    } else {
                        &aio_and_async[..]
                    };
                    let mut cell = Cell::new(
                        scenario,
                        format!("{} QD{qd}", prep.data_fs),
                        Work::Reads {
                            file: FileKind::DiskDirect,
                            qd,
                        },
                        &pick(list),
                    );
                    cell.skipped = prep.direct_error.clone();
                    cells.push(cell);
                }
            }
            Scenario::Threads => cells.push(Cell::new(
                scenario,
                "2 threads QD16".into(),
                Work::Threads { cap: 16 },
                &pick(&[Competitor::OursRing, Competitor::OursShared]),
            )),
            Scenario::Setup => {
                let mut cell = Cell::new(
                    scenario,
                    format!("capacity {}", plan::DEPTH),
                    Work::Setup,
                    &pick(&[
                        Competitor::OursRing,
                        Competitor::Libaio,
                        Competitor::Floor,
                        Competitor::IoUring,
                    ]),
                );
                cell.count = opts.setup_iterations;
                cells.push(cell);
            }
        }
    }
    if let Some(cases) = &opts.cases {
        cells.retain(|c| cases.contains(&c.case));
    }
    cells
}

/// Finds a per-sample count that takes about `sample_ms` on the reference competitor (libaio,
/// or the first that works), then warms every competitor up; failures are recorded per
/// competitor.
fn calibrate(engines: &mut Engines, cell: &mut Cell, sample_ms: u64, fixed: Option<u64>) {
    if let (Some(n), false) = (fixed, cell.work == Work::Setup) {
        cell.count = n.max(1);
    } else if cell.work != Work::Setup {
        let reference: Vec<usize> = (0..cell.competitors.len())
            .filter(|&i| cell.competitors[i] == Competitor::Libaio)
            .chain(0..cell.competitors.len())
            .collect();
        let probe_ns = (sample_ms * 1_000_000 / 8).clamp(2_000_000, 20_000_000) as f64;
        let mut count = 0;
        for i in reference {
            if cell.failed[i].is_some() {
                continue;
            }
            let mut n: u64 = 16;
            let outcome = loop {
                match engines.run(cell.work, cell.competitors[i], n, 0) {
                    Ok(s) if (s.wall_ns as f64) < probe_ns && n < 1 << 40 => n *= 4,
                    Ok(s) => break Ok(s),
                    Err(e) => break Err(e),
                }
            };
            match outcome {
                Ok(s) => {
                    let per_unit = s.wall_ns as f64 / n as f64;
                    count = ((sample_ms as f64 * 1e6 / per_unit) as u64).max(1);
                    break;
                }
                Err(e) => cell.failed[i] = Some(e),
            }
        }
        cell.count = count;
        if count == 0 {
            return;
        }
    }
    let warm = if cell.work == Work::Setup {
        1
    } else {
        (cell.count / 8).max(1)
    };
    for i in 0..cell.competitors.len() {
        if cell.failed[i].is_none() {
            if let Err(e) = engines.run(cell.work, cell.competitors[i], warm, 0) {
                cell.failed[i] = Some(e);
            }
        }
    }
}

fn run(opts: &Options) -> Result<String, String> {
    let started = Instant::now();
    let load_before = load_average();
    let mut notes = Vec::new();
    let prep = prepare_files(opts, &mut notes)?;
    let tmpfs_desc = match &prep.tmpfs {
        Ok(c) => format!(
            "{} ({})",
            c.path.parent().unwrap_or(&c.path).display(),
            data::filesystem(&c.path).0
        ),
        Err(why) => format!("not used: {why}"),
    };
    let mut cells = build_cells(opts, &prep);
    let mut engines = Engines::open(prep.files)?;
    for (lib, e) in &engines.open_errors {
        notes.push(format!("{} unavailable: {e}", lib.name()));
    }

    for cell in cells.iter_mut().filter(|c| c.skipped.is_none()) {
        progress(&format!(
            "calibrating {} {}",
            cell.scenario.key(),
            cell.case
        ));
        calibrate(&mut engines, cell, opts.sample_ms, opts.fixed_count);
        if cell.count == 0 && cell.skipped.is_none() {
            cell.skipped = Some("no competitor could run".into());
        }
    }

    for rep in 0..opts.reps {
        progress(&format!(
            "repetition {}/{} ({:.0} s so far)",
            rep + 1,
            opts.reps,
            started.elapsed().as_secs_f64()
        ));
        let start = (rep * 9973) % data::OFFSETS;
        for cell in cells.iter_mut().filter(|c| c.skipped.is_none()) {
            let n = cell.competitors.len();
            for k in 0..n {
                let i = (k + rep) % n;
                if cell.failed[i].is_some() {
                    continue;
                }
                match engines.run(cell.work, cell.competitors[i], cell.count, start) {
                    Ok(s) => cell.samples[i].push(s),
                    Err(e) => cell.failed[i] = Some(e),
                }
            }
        }
    }

    let info = report::RunInfo {
        command: opts.command.clone(),
        cpu: first_line("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into()),
        data_dir: std::fs::canonicalize(&opts.data_dir)
            .unwrap_or_else(|_| opts.data_dir.clone())
            .display()
            .to_string(),
        data_fs: prep.data_fs.clone(),
        tmpfs: tmpfs_desc,
        reps: opts.reps,
        sample_ms: opts.sample_ms,
        load_before,
        load_after: load_average(),
        seconds: started.elapsed().as_secs_f64(),
        notes,
    };
    drop(prep.tmpfs);
    let rows = report::rows(&cells);
    let targets = report::targets(&rows);
    Ok(if opts.json {
        report::json(&info, &rows, &targets)
    } else {
        report::table(&info, &rows, &targets)
    })
}
