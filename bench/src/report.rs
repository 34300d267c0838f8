//! Turning samples into figures (median, min, max over the repetitions), checking the issue's
//! targets, and printing both as a table (valid Markdown) or as JSON.

use std::fmt::Write as _;

use crate::measure::Sample;
use crate::plan::{Cell, Competitor, Scenario, Work};

/// Median, min and max of a set of values.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }
}

/// The figures of one competitor in one cell.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Requests per second (throughput cells) or microseconds per setup (setup cell).
    pub main: Spread,
    /// CPU nanoseconds per request (throughput cells).
    pub cpu_ns: Option<Spread>,
    /// Microseconds per teardown (setup cell).
    pub teardown_us: Option<Spread>,
    /// Allocations counted over all samples (this crate's rows only).
    pub allocs: Option<u64>,
    /// The main figure of each sample, in repetition order.
    pub per_rep: Vec<f64>,
    /// Requests over all samples.
    pub ops: u64,
}

/// One row: a competitor in a cell, measured or not.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: Scenario,
    pub case: String,
    pub competitor: Competitor,
    pub result: Result<Figures, String>,
    /// Median speed relative to libaio and to the C floor (above 1: faster).
    pub vs_libaio: Option<f64>,
    pub vs_floor: Option<f64>,
    /// The same ratio taken within each repetition (samples run close together in time), then
    /// summarised: less sensitive to the machine drifting during the run.
    pub paired_vs_libaio: Option<Spread>,
    pub paired_vs_floor: Option<Spread>,
}

fn figures(cell: &Cell, c: Competitor, samples: &[Sample]) -> Option<Figures> {
    let setup = cell.work == Work::Setup;
    let per = |ns: u64, s: &Sample| ns as f64 / s.ops.max(1) as f64;
    let per_rep: Vec<f64> = if setup {
        samples.iter().map(|s| per(s.wall_ns, s) / 1e3).collect()
    } else {
        samples
            .iter()
            .map(|s| s.ops as f64 / (s.wall_ns.max(1) as f64 / 1e9))
            .collect()
    };
    Some(Figures {
        main: Spread::of(per_rep.clone())?,
        cpu_ns: (!setup)
            .then(|| Spread::of(samples.iter().map(|s| per(s.cpu_ns, s)).collect()))
            .flatten(),
        teardown_us: setup
            .then(|| {
                Spread::of(
                    samples
                        .iter()
                        .map(|s| per(s.teardown_ns, s) / 1e3)
                        .collect(),
                )
            })
            .flatten(),
        allocs: c
            .counts_allocs()
            .then(|| samples.iter().map(|s| s.allocs).sum()),
        per_rep,
        ops: samples.iter().map(|s| s.ops).sum(),
    })
}

/// Every row of every cell.
pub fn rows(cells: &[Cell]) -> Vec<Row> {
    let mut out = Vec::new();
    for cell in cells {
        let results: Vec<Result<Figures, String>> = cell
            .competitors
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if let Some(why) = &cell.skipped {
                    return Err(why.clone());
                }
                if let Some(why) = &cell.failed[i] {
                    return Err(why.clone());
                }
                figures(cell, c, &cell.samples[i]).ok_or_else(|| "no samples".to_string())
            })
            .collect();
        let figures_of = |who: Competitor| {
            cell.competitors
                .iter()
                .position(|&c| c == who)
                .and_then(|i| results[i].as_ref().ok())
        };
        let (libaio, floor) = (
            figures_of(Competitor::Libaio),
            figures_of(Competitor::Floor),
        );
        let setup = cell.work == Work::Setup;
        // Speed ratio: rates divide directly; times (setup) divide the other way round.
        let speed = |ours: f64, base: f64| if setup { base / ours } else { ours / base };
        let ratio =
            |f: &Figures, base: Option<&Figures>| base.map(|b| speed(f.main.median, b.main.median));
        // Per-repetition ratios need a sample of both in every repetition.
        let paired = |f: &Figures, base: Option<&Figures>| {
            let b = base.filter(|b| b.per_rep.len() == f.per_rep.len())?;
            Spread::of(
                f.per_rep
                    .iter()
                    .zip(&b.per_rep)
                    .map(|(&o, &b)| speed(o, b))
                    .collect(),
            )
        };
        for (i, &c) in cell.competitors.iter().enumerate() {
            let r = results[i].clone();
            let f = r.as_ref().ok();
            out.push(Row {
                scenario: cell.scenario,
                case: cell.case.clone(),
                competitor: c,
                vs_libaio: f.and_then(|f| ratio(f, libaio)),
                vs_floor: f.and_then(|f| ratio(f, floor)),
                paired_vs_libaio: f.and_then(|f| paired(f, libaio)),
                paired_vs_floor: f.and_then(|f| paired(f, floor)),
                result: r,
            });
        }
    }
    out
}

/// One of the targets, checked.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// The measured ratio (or count).
    pub value: f64,
    /// `>= goal` meets the target, or `<= goal` where `at_most`.
    pub goal: f64,
    pub at_most: bool,
    pub met: bool,
    pub note: String,
}

fn find<'a>(rows: &'a [Row], s: Scenario, case: &str, c: Competitor) -> Option<&'a Figures> {
    find_row(rows, s, case, c).and_then(|r| r.result.as_ref().ok())
}

fn find_row<'a>(rows: &'a [Row], s: Scenario, case: &str, c: Competitor) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.scenario == s && r.case == case && r.competitor == c)
}

/// "per repetition: median M, min-max", for a target's note.
fn paired_note(p: Option<Spread>) -> String {
    p.map_or_else(String::new, |p| {
        format!(
            "per-repetition ratio {:.3} [{:.3}..{:.3}]",
            p.median, p.min, p.max
        )
    })
}

fn join_notes(a: String, b: String) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b,
        (_, true) => a,
        _ => format!("{a}; {b}"),
    }
}

/// The targets of issues 7 and 12 that these rows can decide.
pub fn targets(rows: &[Row]) -> Vec<Target> {
    let mut out = Vec::new();
    fn at_least(out: &mut Vec<Target>, name: String, value: f64, goal: f64, note: String) {
        out.push(Target {
            met: value >= goal,
            name,
            value,
            goal,
            at_most: false,
            note,
        })
    }
    let ours = Competitor::OursRing;
    for (batch, goal) in [(1, 1.5), (8, 1.1)] {
        let case = format!("batch {batch}");
        if let (Some(o), Some(l)) = (
            find(rows, Scenario::Poll, &case, ours),
            find(rows, Scenario::Poll, &case, Competitor::Libaio),
        ) {
            at_least(
                &mut out,
                format!("POLL {case}: linux-aio / libaio"),
                o.main.median / l.main.median,
                goal,
                paired_note(
                    find_row(rows, Scenario::Poll, &case, ours).and_then(|r| r.paired_vs_libaio),
                ),
            );
        }
    }
    for batch in [32, 128] {
        let case = format!("batch {batch}");
        if let (Some(o), Some(f)) = (
            find(rows, Scenario::Poll, &case, ours),
            find(rows, Scenario::Poll, &case, Competitor::Floor),
        ) {
            let extra_ns = 1e9 / o.main.median - 1e9 / f.main.median;
            at_least(
                &mut out,
                format!("POLL {case}: linux-aio / C floor"),
                o.main.median / f.main.median,
                0.97,
                join_notes(
                    format!("{extra_ns:+.1} ns per request against the floor (target < 20)"),
                    paired_note(
                        find_row(rows, Scenario::Poll, &case, ours).and_then(|r| r.paired_vs_floor),
                    ),
                ),
            );
        }
    }
    let cases: Vec<(Scenario, String)> = rows
        .iter()
        .filter(|r| matches!(r.scenario, Scenario::Buffered | Scenario::Direct))
        .map(|r| (r.scenario, r.case.clone()))
        .fold(Vec::new(), |mut v, k| {
            if !v.contains(&k) {
                v.push(k);
            }
            v
        });
    for (s, case) in cases {
        let (Some(o), Some(l)) = (
            find(rows, s, &case, ours),
            find(rows, s, &case, Competitor::Libaio),
        ) else {
            continue;
        };
        let ratio = o.main.median / l.main.median;
        let paired = paired_note(find_row(rows, s, &case, ours).and_then(|r| r.paired_vs_libaio));
        match s {
            Scenario::Buffered => {
                let goal = if case.ends_with("QD1") { 1.3 } else { 1.0 };
                at_least(
                    &mut out,
                    format!("buffered {case}: linux-aio / libaio IOPS"),
                    ratio,
                    goal,
                    paired,
                );
            }
            _ => {
                at_least(
                    &mut out,
                    format!("O_DIRECT {case}: linux-aio / libaio IOPS"),
                    ratio,
                    1.0,
                    paired,
                );
                if let (Some(oc), Some(lc)) = (o.cpu_ns, l.cpu_ns) {
                    let r = oc.median / lc.median;
                    out.push(Target {
                        name: format!("O_DIRECT {case}: linux-aio / libaio CPU per request"),
                        value: r,
                        goal: 1.0,
                        at_most: true,
                        met: r <= 1.0,
                        note: format!("{:.0} ns vs {:.0} ns", oc.median, lc.median),
                    });
                }
            }
        }
    }
    // Issue 13: the async crate against the synchronous ring path and tokio's blocking pool.
    for r in rows
        .iter()
        .filter(|r| r.competitor == Competitor::Async && r.case.ends_with("QD32"))
    {
        let Ok(a) = &r.result else { continue };
        let kind = if r.scenario == Scenario::Direct {
            "O_DIRECT"
        } else {
            "buffered"
        };
        let per_rep = |base: Competitor| {
            let b = find(rows, r.scenario, &r.case, base)?;
            (b.per_rep.len() == a.per_rep.len()).then(|| {
                Spread::of(
                    a.per_rep
                        .iter()
                        .zip(&b.per_rep)
                        .map(|(x, y)| x / y)
                        .collect(),
                )
            })?
        };
        for (base, goal, what) in [
            (Competitor::OursRing, 0.9, "the sync ring path"),
            (Competitor::TokioFs, 2.0, "tokio spawn_blocking pread"),
        ] {
            if let Some(b) = find(rows, r.scenario, &r.case, base) {
                at_least(
                    &mut out,
                    format!("async {kind} {}: linux-aio-async / {what} IOPS", r.case),
                    a.main.median / b.main.median,
                    goal,
                    paired_note(per_rep(base)),
                );
            }
        }
        if let Some(allocs) = a.allocs {
            out.push(Target {
                name: format!("async {kind} {}: heap allocations by the requests", r.case),
                value: allocs as f64,
                goal: 0.0,
                at_most: true,
                met: allocs == 0,
                note: format!(
                    "{} requests; counted once the {} tasks are spawned",
                    a.ops,
                    crate::plan::QUEUE_DEPTHS[1]
                ),
            });
        }
    }
    // Issue 12: the scoped API at the floor's speed, the direct ring path staying there.
    for (who, goal, name) in [
        (Competitor::OursScope, 0.97, "scoped API"),
        (Competitor::OursRing, 0.99, "linux-aio (ring reap)"),
    ] {
        let cases: Vec<(Scenario, String)> = rows
            .iter()
            .filter(|r| r.competitor == who && r.vs_floor.is_some())
            .filter(|r| who == Competitor::OursScope || r.scenario == Scenario::Poll)
            .map(|r| (r.scenario, r.case.clone()))
            .collect();
        for (sc, case) in cases {
            let Some(row) = find_row(rows, sc, &case, who) else {
                continue;
            };
            let kind = match sc {
                Scenario::Poll => "POLL",
                Scenario::Buffered => "buffered",
                _ => "O_DIRECT",
            };
            at_least(
                &mut out,
                format!("{kind} {case}: {name} / C floor"),
                row.vs_floor.unwrap_or(0.0),
                goal,
                paired_note(row.paired_vs_floor),
            );
        }
    }
    let counted: Vec<u64> = rows
        .iter()
        .filter(|r| r.competitor.is_ours() && r.scenario != Scenario::Setup)
        .filter_map(|r| r.result.as_ref().ok()?.allocs)
        .collect();
    if counted.is_empty() {
        return out;
    }
    let allocs: u64 = counted.iter().sum();
    out.push(Target {
        name: "heap allocations in linux-aio's submit and reap loops".into(),
        value: allocs as f64,
        goal: 0.0,
        at_most: true,
        met: allocs == 0,
        note: String::new(),
    });
    out
}

/// What the header of the report says about the run.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub command: String,
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub data_dir: String,
    pub data_fs: String,
    pub tmpfs: String,
    pub reps: usize,
    pub sample_ms: u64,
    pub load_before: String,
    pub load_after: String,
    pub seconds: f64,
    pub notes: Vec<String>,
}

fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.3} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}x"))
}

/// The whole report as text: machine, one Markdown table per scenario, targets.
pub fn table(info: &RunInfo, rows: &[Row], targets: &[Target]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "linux-aio benchmarks: `{}`", info.command);
    let _ = writeln!(
        s,
        "machine: {} ({} cores), Linux {}; data: {} ({}); tmpfs: {}",
        info.cpu, info.cores, info.kernel, info.data_dir, info.data_fs, info.tmpfs
    );
    let _ = writeln!(
        s,
        "{} repetitions, ~{} ms per sample, competitors alternated; load average {} before, {} after; {:.0} s",
        info.reps, info.sample_ms, info.load_before, info.load_after, info.seconds
    );
    for note in &info.notes {
        let _ = writeln!(s, "note: {note}");
    }
    for scenario in Scenario::ALL {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.scenario == scenario).collect();
        if mine.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n{}\n", scenario.title());
        let (header, body): (Vec<&str>, Vec<Vec<String>>) = if scenario == Scenario::Setup {
            (
                vec![
                    "case",
                    "competitor",
                    "setup µs",
                    "min",
                    "max",
                    "teardown µs",
                    "min",
                    "max",
                    "setup vs libaio",
                    "allocs",
                ],
                mine.iter()
                    .map(|r| {
                        let name = if r.competitor == Competitor::OursRing {
                            "linux-aio (Context::new, drop)"
                        } else {
                            r.competitor.label()
                        };
                        let mut cells = vec![r.case.clone(), name.to_string()];
                        match &r.result {
                            Ok(f) => {
                                let t = f.teardown_us.unwrap_or(f.main);
                                cells.extend([
                                    format!("{:.1}", f.main.median),
                                    format!("{:.1}", f.main.min),
                                    format!("{:.1}", f.main.max),
                                    format!("{:.0}", t.median),
                                    format!("{:.0}", t.min),
                                    format!("{:.0}", t.max),
                                    ratio(r.vs_libaio),
                                    f.allocs.map_or("-".into(), |a| a.to_string()),
                                ]);
                            }
                            Err(why) => cells.push(format!("skipped: {why}")),
                        }
                        cells
                    })
                    .collect(),
            )
        } else {
            let unit = if matches!(scenario, Scenario::Poll | Scenario::Threads) {
                "requests/s"
            } else {
                "IOPS"
            };
            (
                vec![
                    "case",
                    "competitor",
                    unit,
                    "min",
                    "max",
                    "vs libaio",
                    "vs floor",
                    "CPU ns/req",
                    "allocs",
                ],
                mine.iter()
                    .map(|r| {
                        let name = match (scenario, r.competitor) {
                            (Scenario::Threads, Competitor::OursRing) => {
                                "linux-aio (Submitter + Reaper)"
                            }
                            (_, c) => c.label(),
                        };
                        let mut cells = vec![r.case.clone(), name.to_string()];
                        match &r.result {
                            Ok(f) => cells.extend([
                                rate(f.main.median),
                                rate(f.main.min),
                                rate(f.main.max),
                                ratio(r.vs_libaio),
                                ratio(r.vs_floor),
                                f.cpu_ns.map_or("-".into(), |c| format!("{:.0}", c.median)),
                                f.allocs.map_or("-".into(), |a| a.to_string()),
                            ]),
                            Err(why) => cells.push(format!("skipped: {why}")),
                        }
                        cells
                    })
                    .collect(),
            )
        };
        s.push_str(&markdown(&header, &body));
    }
    let _ = writeln!(s, "\nTargets (issues 7 and 12), from the medians above:\n");
    if targets.is_empty() {
        let _ = writeln!(s, "- none decided by the scenarios run");
    }
    for t in targets {
        let _ = writeln!(
            s,
            "- [{}] {}: {} (target {} {}){}",
            if t.met { "met" } else { "MISSED" },
            t.name,
            if t.name.contains("allocations") {
                format!("{}", t.value)
            } else {
                format!("{:.3}", t.value)
            },
            if t.at_most { "<=" } else { ">=" },
            t.goal,
            if t.note.is_empty() {
                String::new()
            } else {
                format!("; {}", t.note)
            }
        );
    }
    s
}

/// A Markdown table with aligned columns; a short row (a skip reason) spans the rest.
fn markdown(header: &[&str], body: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in body.iter().filter(|r| r.len() == cols) {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let w = if i < cells.len() - 1 || cells.len() == cols {
                width[i]
            } else {
                0
            };
            // Names left, numbers right.
            if i < 2 {
                let _ = write!(l, " {c:<w$} |");
            } else {
                let _ = write!(l, " {c:>w$} |");
            }
        }
        l.push('\n');
        l
    };
    let mut s = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    s.push('|');
    for (i, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if i < 2 {
            let _ = write!(s, " {dashes} |");
        } else {
            let _ = write!(s, " {}: |", &dashes[1..]);
        }
    }
    s.push('\n');
    for row in body {
        s.push_str(&line(row));
    }
    s
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "null".into()
    }
}

fn json_spread(s: &Spread) -> String {
    format!(
        "{{\"median\": {}, \"min\": {}, \"max\": {}}}",
        json_num(s.median),
        json_num(s.min),
        json_num(s.max)
    )
}

/// The same figures as one JSON object.
pub fn json(info: &RunInfo, rows: &[Row], targets: &[Target]) -> String {
    let mut s = String::from("{\n");
    let _ = writeln!(s, "  \"command\": {},", json_str(&info.command));
    let _ = writeln!(
        s,
        "  \"machine\": {{\"cpu\": {}, \"cores\": {}, \"kernel\": {}, \"data_dir\": {}, \"data_fs\": {}, \"tmpfs\": {}}},",
        json_str(&info.cpu),
        info.cores,
        json_str(&info.kernel),
        json_str(&info.data_dir),
        json_str(&info.data_fs),
        json_str(&info.tmpfs)
    );
    let _ = writeln!(
        s,
        "  \"repetitions\": {}, \"sample_ms\": {}, \"load_before\": {}, \"load_after\": {}, \"seconds\": {},",
        info.reps,
        info.sample_ms,
        json_str(&info.load_before),
        json_str(&info.load_after),
        json_num(info.seconds)
    );
    let notes: Vec<String> = info.notes.iter().map(|n| json_str(n)).collect();
    let _ = writeln!(s, "  \"notes\": [{}],", notes.join(", "));
    s.push_str("  \"results\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let mut o = format!(
            "    {{\"scenario\": {}, \"case\": {}, \"competitor\": {}",
            json_str(r.scenario.key()),
            json_str(&r.case),
            json_str(r.competitor.key())
        );
        match &r.result {
            Ok(f) => {
                if r.scenario == Scenario::Setup {
                    let _ = write!(o, ", \"setup_us\": {}", json_spread(&f.main));
                    if let Some(t) = &f.teardown_us {
                        let _ = write!(o, ", \"teardown_us\": {}", json_spread(t));
                    }
                } else {
                    let unit = if matches!(r.scenario, Scenario::Poll | Scenario::Threads) {
                        "requests_per_s"
                    } else {
                        "iops"
                    };
                    let _ = write!(o, ", \"{unit}\": {}", json_spread(&f.main));
                    if let Some(c) = &f.cpu_ns {
                        let _ = write!(o, ", \"cpu_ns_per_request\": {}", json_spread(c));
                    }
                }
                for (k, v) in [("vs_libaio", r.vs_libaio), ("vs_floor", r.vs_floor)] {
                    if let Some(v) = v {
                        let _ = write!(o, ", \"{k}\": {}", json_num(v));
                    }
                }
                if let Some(a) = f.allocs {
                    let _ = write!(o, ", \"allocations\": {a}");
                }
                for (k, v) in [
                    ("paired_vs_libaio", r.paired_vs_libaio),
                    ("paired_vs_floor", r.paired_vs_floor),
                ] {
                    if let Some(v) = v {
                        let _ = write!(o, ", \"{k}\": {}", json_spread(&v));
                    }
                }
                let per: Vec<String> = f.per_rep.iter().map(|&v| json_num(v)).collect();
                let _ = write!(o, ", \"per_repetition\": [{}]", per.join(", "));
            }
            Err(why) => {
                let _ = write!(o, ", \"skipped\": {}", json_str(why));
            }
        }
        o.push('}');
        if i + 1 < rows.len() {
            o.push(',');
        }
        s.push_str(&o);
        s.push('\n');
    }
    s.push_str("  ],\n  \"targets\": [\n");
    for (i, t) in targets.iter().enumerate() {
        let _ = write!(
            s,
            "    {{\"name\": {}, \"value\": {}, \"goal\": {}, \"at_most\": {}, \"met\": {}, \"note\": {}}}",
            json_str(&t.name),
            json_num(t.value),
            json_num(t.goal),
            t.at_most,
            t.met,
            json_str(&t.note)
        );
        s.push_str(if i + 1 < targets.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ]\n}\n");
    s
}
