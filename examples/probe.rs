//! `cargo run --example probe [-- --json]`: reports what the running kernel's native AIO offers.
//!
//! AIO goes through the safe API (`Context`, `Request`, `Context::scope`); the raw layer is used
//! only to read the ring header fields the report shows. Every kernel answer, failures included,
//! becomes a value in the report: the program never panics on what the kernel says, and exits 0
//! whenever it wrote a report (a kernel without AIO is a valid report). Built for
//! `x86_64-unknown-linux-musl` it is a static binary that can run as, or from, an initramfs
//! `/init`.

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use linux_aio::raw::{self, aio_ring};
use linux_aio::{Context, Event, Request, RwFlags, Scope, ScopedCancel, SigSet};
use rustix::event::{eventfd, EventfdFlags, PollFlags};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;

/// How long to wait for a completion that should arrive at once.
const WAIT: Duration = Duration::from_secs(1);
/// Slots asked of `io_setup`; the probe has at most one request in flight.
const NR_EVENTS: u32 = 16;
/// The bytes each `RWF_*` test writes.
static WRITE_DATA: [u8; 8] = *b"aioprobe";

/// The `aio_rw_flags` values tried on a buffered `IOCB_CMD_PWRITE`: JSON key, label, flags.
const RWF_TESTS: [(&str, &str, RwFlags); 6] = [
    ("rwf_hipri", "RWF_HIPRI", RwFlags::HIPRI),
    ("rwf_dsync", "RWF_DSYNC", RwFlags::DSYNC),
    ("rwf_sync", "RWF_SYNC", RwFlags::SYNC),
    ("rwf_nowait", "RWF_NOWAIT", RwFlags::NOWAIT),
    ("rwf_append", "RWF_APPEND", RwFlags::APPEND),
    (
        "rwf_unknown_bit30",
        "RWF unknown (1<<30)",
        RwFlags::from_bits_retain(1 << 30),
    ),
];

fn main() {
    let mut json = false;
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("--json") => json = true,
            Some("-h" | "--help") => {
                let _ = writeln!(std::io::stdout(), "usage: probe [--json]");
                return;
            }
            _ => {
                let _ = writeln!(
                    std::io::stderr(),
                    "probe: unknown argument {arg:?}\nusage: probe [--json]"
                );
                std::process::exit(2);
            }
        }
    }

    let mut report = Report::default();
    report.add("arch", "architecture", Value::Text(raw::ARCH.into()));
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    report.add("kernel_release", "kernel release", Value::Text(release));
    // Read before io_setup, so that fs.aio-nr does not count the probe's own context.
    let aio_max_nr = sysctl_fs("aio-max-nr");
    let aio_nr = sysctl_fs("aio-nr");

    let ctx = Context::new(NR_EVENTS);
    let status = match &ctx {
        Ok(_) => "available".to_string(),
        Err(Errno::NOSYS) => "unavailable (ENOSYS)".to_string(),
        // The only cause io_setup(2) gives for EAGAIN with a valid nr_events.
        Err(Errno::AGAIN) => "io_setup failed (EAGAIN: fs.aio-max-nr reached)".to_string(),
        Err(e) => format!("io_setup failed ({})", name(*e)),
    };
    report.add("aio", "aio", Value::Text(status));
    report.add("aio_max_nr", "fs.aio-max-nr", aio_max_nr);
    report.add("aio_nr", "fs.aio-nr", aio_nr);
    let mut ctx = ctx.ok();

    // Every row below needs a context: n/a without one.
    let ring = ctx.as_ref().map(ring_header);
    let field = |f: fn(&aio_ring) -> Value| ring.as_ref().map_or(Value::Na, f);
    report.add("ring_magic", "ring magic", field(|r| Value::Hex(r.magic)));
    report.add("ring_nr", "ring nr", field(|r| Value::Int(r.nr.into())));
    report.add(
        "ring_header_length",
        "ring header_length",
        field(|r| Value::Int(r.header_length.into())),
    );
    report.add(
        "ring_incompat_features",
        "ring incompat_features",
        field(|r| Value::Int(r.incompat_features.into())),
    );
    let reaping = ctx.as_ref().map(Context::user_space_reaping);
    report.add(
        "user_space_reaping",
        "user-space reaping usable",
        reaping.map_or(Value::Na, Value::Bool),
    );

    report.add("poll", "POLL", run(&mut ctx, probe_poll));
    report.add(
        "io_pgetevents",
        "io_pgetevents",
        run(&mut ctx, probe_pgetevents),
    );
    // Buffered-write flags depend on the filesystem: say which directory the file is in.
    let dir = std::env::temp_dir().display().to_string();
    report.add("rwf_dir", "RWF test directory", Value::Text(dir));
    let temp = ctx.as_ref().map(|_| TempFile::create());
    for (key, label, flags) in RWF_TESTS {
        let value = match (&mut ctx, &temp) {
            (Some(ctx), Some(Ok(temp))) => Value::Text(probe_rwf(ctx, &temp.file, flags)),
            (Some(_), Some(Err(why))) => Value::Text(format!("n/a (temp file: {why})")),
            _ => Value::Na,
        };
        report.add(key, label, value);
    }
    report.add("cancel", "cancel", run(&mut ctx, probe_cancel));

    let destroy = ctx.map_or(Value::Na, |ctx| {
        let start = Instant::now();
        let ret = ctx.destroy();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        match ret {
            Ok(()) => Value::Millis(ms),
            Err(e) => Value::Text(format!("failed ({}) after {ms:.1} ms", name(e))),
        }
    });
    report.add("io_destroy_ms", "io_destroy", destroy);

    let mut out = std::io::stdout().lock();
    // A closed stdout (`probe | head -1`) is not worth a panic: ignore write errors.
    let _ = if json {
        report.write_json(&mut out)
    } else {
        report.write_table(&mut out)
    };
    let _ = out.flush();
}

/// The probe `f`'s report, or n/a without a context.
fn run(ctx: &mut Option<Context>, f: fn(&mut Context) -> String) -> Value {
    ctx.as_mut().map_or(Value::Na, |ctx| Value::Text(f(ctx)))
}

/// The completion ring's header, which the kernel maps at the context's id.
fn ring_header(ctx: &Context) -> aio_ring {
    // SAFETY: `ctx` is live (borrowed) and was just created: io_setup mapped the ring
    // (page-aligned, at least one page, readable) at its id, and only io_destroy unmaps it, which
    // needs the context by value (or a scope's last-resort drain; no scope has run yet).
    // Volatile: the kernel updates the header behind the compiler's back.
    unsafe { std::ptr::read_volatile(ctx.id() as *const aio_ring) }
}

/// Waits up to [`WAIT`] for the completion of the scope's one request (at once if a cancel has
/// already handed it to the scope).
fn reap(s: &Scope<'_, '_, 1>) -> Result<Event, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no event within {} ms", WAIT.as_millis()));
        }
        match s.wait(s.in_flight(), Some(left)) {
            Ok(mut done) => {
                if let Some(c) = done.next() {
                    return Ok(c.event);
                }
                // Timed out: the deadline check ends the loop.
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(format!("io_getevents: {}", name(e))),
        }
    }
}

/// POLL on a readable eventfd: it completes at once with the ready mask.
fn probe_poll(ctx: &mut Context) -> String {
    let fd = match eventfd_with(1) {
        Ok(fd) => fd,
        Err(why) => return format!("n/a ({why})"),
    };
    ctx.scope::<1, _>(|s| {
        if let Err(r) = s.submit(Request::poll(fd.as_fd(), PollFlags::IN)) {
            return format!("unsupported ({} from io_submit)", name(r.error));
        }
        // The raw `res`, not `Event::result`, which would panic on a value no errno has.
        match reap(s).map(|e| e.as_raw().res) {
            Ok(res) if res < 0 => format!("unsupported ({} in res)", res_name(res)),
            Ok(res) => format!("supported (res=0x{res:x})"),
            Err(why) => format!("unknown ({why})"),
        }
    })
}

/// `io_pgetevents` with min_nr 0, nr 1, a zero timeout and an empty signal mask.
fn probe_pgetevents(ctx: &mut Context) -> String {
    // With min 0 a wait reading the ring would return before making the system call.
    let reaping = ctx.user_space_reaping();
    ctx.set_user_space_reaping(false);
    let mut events = [Event::default()];
    let ret = ctx.wait_with_sigmask(&mut events, 0, Some(Duration::ZERO), &SigSet::empty());
    ctx.set_user_space_reaping(reaping);
    match ret {
        Err(Errno::NOSYS) => "unsupported (ENOSYS)".into(),
        Err(e) => format!("error ({})", name(e)),
        Ok(_) => "supported".into(),
    }
}

/// A small buffered PWRITE with `aio_rw_flags = flags`.
fn probe_rwf(ctx: &mut Context, file: &File, flags: RwFlags) -> String {
    ctx.scope::<1, _>(|s| {
        if let Err(r) = s.submit(Request::write(file.as_fd(), &WRITE_DATA, 0).flags(flags)) {
            return format!("rejected ({} from io_submit)", name(r.error));
        }
        match reap(s).map(|e| e.as_raw().res) {
            Ok(res) if res < 0 => format!("rejected ({} in res)", res_name(res)),
            Ok(_) => "accepted".into(),
            Err(why) => format!("unknown ({why})"),
        }
    })
}

/// io_cancel of a POLL that cannot complete (its eventfd is not readable).
fn probe_cancel(ctx: &mut Context) -> String {
    let fd = match eventfd_with(0) {
        Ok(fd) => fd,
        Err(why) => return format!("n/a ({why})"),
    };
    ctx.scope::<1, _>(|s| {
        let ticket = match s.submit(Request::poll(fd.as_fd(), PollFlags::IN)) {
            Ok(ticket) => ticket,
            Err(r) => return format!("none (POLL unsupported: {})", name(r.error)),
        };
        let text = match s.cancel(ticket) {
            // Linux 3.12 and later: the event comes through the ring.
            Ok(ScopedCancel::InProgress) => match reap(s) {
                Ok(e) => format!(
                    "einprogress (event res={} res2={})",
                    e.as_raw().res,
                    e.as_raw().res2
                ),
                Err(why) => format!("einprogress ({why})"),
            },
            // Before 3.12: io_cancel returned the event in its result buffer, which the safe
            // API pre-fills with zeros (the kernel writes obj, the iocb's nonzero address).
            Ok(ScopedCancel::Canceled) => match reap(s) {
                Ok(e) if e.iocb_address() == 0 => {
                    "result (but the result buffer was not written)".into()
                }
                Ok(e) => format!("result (res={} res2={})", e.as_raw().res, e.as_raw().res2),
                Err(why) => format!("result ({why})"),
            },
            // The scope has not reaped the poll, so this is io_cancel's EINVAL.
            Ok(ScopedCancel::AlreadyComplete | ScopedCancel::NotCancelable) => {
                "none (EINVAL)".into()
            }
            Err(e) => format!("none ({})", name(e)),
        };
        if s.in_flight() > 0 {
            // Still pending: make the eventfd readable so that it completes and the scope's
            // drain, which waits without a timeout, returns.
            let _ = rustix::io::write(&fd, &1u64.to_ne_bytes());
        }
        text
    })
}

fn eventfd_with(count: u64) -> Result<OwnedFd, String> {
    let fd = eventfd(0, EventfdFlags::CLOEXEC).map_err(|e| format!("eventfd: {}", name(e)))?;
    if count > 0 {
        rustix::io::write(&fd, &count.to_ne_bytes())
            .map_err(|e| format!("eventfd write: {}", name(e)))?;
    }
    Ok(fd)
}

/// An empty file in `std::env::temp_dir()`, removed on drop.
struct TempFile {
    path: PathBuf,
    file: File,
}

impl TempFile {
    fn create() -> Result<TempFile, String> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("linux-aio-probe-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempFile { path, file })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An integer from `/proc/sys/fs/<name>`, or n/a.
fn sysctl_fs(name: &str) -> Value {
    std::fs::read_to_string(format!("/proc/sys/fs/{name}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map_or(Value::Na, Value::Int)
}

/// The symbolic name of `errno`.
fn name(errno: Errno) -> String {
    errno_name(errno.raw_os_error().into())
}

/// The errno name of a negative event result.
fn res_name(res: i64) -> String {
    errno_name(res.saturating_neg())
}

/// The symbolic name of a Linux errno (rustix's constants carry the target's numbering).
fn errno_name(errno: i64) -> String {
    const NAMES: &[(Errno, &str)] = &[
        (Errno::PERM, "EPERM"),
        (Errno::NOENT, "ENOENT"),
        (Errno::INTR, "EINTR"),
        (Errno::IO, "EIO"),
        (Errno::NXIO, "ENXIO"),
        (Errno::BADF, "EBADF"),
        (Errno::AGAIN, "EAGAIN"),
        (Errno::NOMEM, "ENOMEM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::FAULT, "EFAULT"),
        (Errno::BUSY, "EBUSY"),
        (Errno::EXIST, "EEXIST"),
        (Errno::NODEV, "ENODEV"),
        (Errno::NOTDIR, "ENOTDIR"),
        (Errno::ISDIR, "EISDIR"),
        (Errno::INVAL, "EINVAL"),
        (Errno::NFILE, "ENFILE"),
        (Errno::MFILE, "EMFILE"),
        (Errno::NOTTY, "ENOTTY"),
        (Errno::FBIG, "EFBIG"),
        (Errno::NOSPC, "ENOSPC"),
        (Errno::SPIPE, "ESPIPE"),
        (Errno::ROFS, "EROFS"),
        (Errno::PIPE, "EPIPE"),
        (Errno::NOSYS, "ENOSYS"),
        (Errno::OVERFLOW, "EOVERFLOW"),
        (Errno::OPNOTSUPP, "EOPNOTSUPP"),
        (Errno::TIMEDOUT, "ETIMEDOUT"),
        (Errno::ALREADY, "EALREADY"),
        (Errno::INPROGRESS, "EINPROGRESS"),
        (Errno::DQUOT, "EDQUOT"),
        (Errno::CANCELED, "ECANCELED"),
    ];
    NAMES
        .iter()
        .find(|(e, _)| i64::from(e.raw_os_error()) == errno)
        .map_or_else(|| format!("errno {errno}"), |(_, name)| (*name).to_string())
}

/// One reported value: shown as text in the table, typed in JSON (n/a is `null`).
enum Value {
    Text(String),
    Int(i64),
    Hex(u32),
    Bool(bool),
    Millis(f64),
    Na,
}

#[derive(Default)]
struct Report {
    /// JSON key, table label, value.
    rows: Vec<(&'static str, &'static str, Value)>,
}

impl Report {
    fn add(&mut self, key: &'static str, label: &'static str, value: Value) {
        self.rows.push((key, label, value));
    }

    fn write_table(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let width = self
            .rows
            .iter()
            .map(|(_, label, _)| label.len() + 1)
            .max()
            .unwrap_or(0);
        for (_, label, value) in &self.rows {
            let text = match value {
                Value::Text(s) => s.clone(),
                Value::Int(n) => n.to_string(),
                Value::Hex(n) => format!("0x{n:08x}"),
                Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
                Value::Millis(ms) => format!("{ms:.1} ms"),
                Value::Na => "n/a".to_string(),
            };
            writeln!(out, "{:<width$}  {text}", format!("{label}:"))?;
        }
        Ok(())
    }

    fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "{{")?;
        for (i, (key, _, value)) in self.rows.iter().enumerate() {
            let text = match value {
                Value::Text(s) => json_string(s),
                Value::Int(n) => n.to_string(),
                Value::Hex(n) => json_string(&format!("0x{n:08x}")),
                Value::Bool(b) => b.to_string(),
                Value::Millis(ms) if ms.is_finite() => format!("{ms:.1}"),
                Value::Millis(_) | Value::Na => "null".to_string(),
            };
            let comma = if i + 1 < self.rows.len() { "," } else { "" };
            writeln!(out, "  {}: {text}{comma}", json_string(key))?;
        }
        writeln!(out, "}}")
    }
}

/// `s` as a JSON string literal: quotes, backslashes and control characters escaped.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
