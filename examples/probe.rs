//! `cargo run --example probe [-- --json]`: reports what the running kernel's native AIO offers.
//!
//! AIO system calls go through `linux_aio::raw` only; everything else uses std and rustix. Every
//! kernel answer, failures included, becomes a value in the report: the program never panics on
//! what the kernel says, and exits 0 whenever it wrote a report (a kernel without AIO is a valid
//! report). Built for `x86_64-unknown-linux-musl` it is a static binary that can run as, or from,
//! an initramfs `/init`.

use std::ffi::c_long;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use linux_aio::raw::{
    self, __aio_sigset, __kernel_timespec, aio_context_t, aio_ring, io_event, iocb,
};
use rustix::event::{eventfd, EventfdFlags, PollFlags};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;

/// How long to wait for a completion that should arrive at once.
const WAIT: Duration = Duration::from_secs(1);
/// Slots asked of `io_setup`; the probe has at most one request in flight.
const NR_EVENTS: u32 = 16;
/// The bytes each `RWF_*` test writes; static, so they outlive any request that names them.
static WRITE_DATA: [u8; 8] = *b"aioprobe";

/// `aio_data` tags, so that every probe recognises its own completion.
const TAG_POLL: u64 = 0x706f_6c6c;
const TAG_CANCEL: u64 = 0x6361_6e63;
const TAG_RWF: u64 = 0x7277_6600;

/// The `aio_rw_flags` values tried on a buffered `IOCB_CMD_PWRITE`: JSON key, label, flag.
const RWF_TESTS: [(&str, &str, i32); 6] = [
    ("rwf_hipri", "RWF_HIPRI", raw::RWF_HIPRI),
    ("rwf_dsync", "RWF_DSYNC", raw::RWF_DSYNC),
    ("rwf_sync", "RWF_SYNC", raw::RWF_SYNC),
    ("rwf_nowait", "RWF_NOWAIT", raw::RWF_NOWAIT),
    ("rwf_append", "RWF_APPEND", raw::RWF_APPEND),
    ("rwf_unknown_bit30", "RWF unknown (1<<30)", 1 << 30),
];

const fn neg(errno: Errno) -> c_long {
    -(errno.raw_os_error() as c_long)
}

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

    let aio = Aio::setup(NR_EVENTS);
    let status = match &aio {
        Ok(_) => "available".to_string(),
        Err(ret) if *ret == neg(Errno::NOSYS) => "unavailable (ENOSYS)".to_string(),
        Err(ret) => format!("io_setup failed ({})", kernel_error(*ret)),
    };
    report.add("aio", "aio", Value::Text(status));
    report.add("aio_max_nr", "fs.aio-max-nr", aio_max_nr);
    report.add("aio_nr", "fs.aio-nr", aio_nr);
    let aio = aio.ok();

    // Every row below needs a context: n/a without one.
    let ring = aio.as_ref().map(Aio::ring_header);
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
    report.add(
        "user_space_reaping",
        "user-space reaping usable",
        field(|r| {
            Value::Bool(
                r.magic == raw::AIO_RING_MAGIC
                    && r.incompat_features == raw::AIO_RING_INCOMPAT_FEATURES
                    && r.header_length == 32,
            )
        }),
    );

    let run =
        |f: &dyn Fn(&Aio) -> String| aio.as_ref().map_or(Value::Na, |aio| Value::Text(f(aio)));
    report.add("poll", "POLL", run(&probe_poll));
    report.add("io_pgetevents", "io_pgetevents", run(&probe_pgetevents));
    // Buffered-write flags depend on the filesystem: say which directory the file is in.
    let dir = std::env::temp_dir().display().to_string();
    report.add("rwf_dir", "RWF test directory", Value::Text(dir));
    let temp = aio.as_ref().map(|_| TempFile::create());
    for (key, label, flag) in RWF_TESTS {
        let value = match (&aio, &temp) {
            (Some(aio), Some(Ok(temp))) => Value::Text(probe_rwf(aio, &temp.file, flag)),
            (Some(_), Some(Err(why))) => Value::Text(format!("n/a (temp file: {why})")),
            _ => Value::Na,
        };
        report.add(key, label, value);
    }
    report.add("cancel", "cancel", run(&probe_cancel));

    let destroy = match aio {
        Some(aio) => {
            let (ret, took) = aio.destroy();
            let ms = took.as_secs_f64() * 1000.0;
            match ret {
                0 => Value::Millis(ms),
                ret => Value::Text(format!("failed ({}) after {ms:.1} ms", kernel_error(ret))),
            }
        }
        None => Value::Na,
    };
    report.add("io_destroy_ms", "io_destroy", destroy);
    drop(temp); // removes the file, now that no request can name it

    let mut out = std::io::stdout().lock();
    // A closed stdout (`probe | head -1`) is not worth a panic: ignore write errors.
    let _ = if json {
        report.write_json(&mut out)
    } else {
        report.write_table(&mut out)
    };
    let _ = out.flush();
}

/// A context from a successful `io_setup`, live until [`Aio::destroy`] consumes it.
struct Aio {
    ctx: aio_context_t,
}

impl Aio {
    /// `io_setup(nr)`: the context, or the kernel's negated errno.
    fn setup(nr: u32) -> Result<Aio, c_long> {
        let mut ctx: aio_context_t = 0;
        // SAFETY: `ctx` is a live local, valid for reads and writes, and 0 as io_setup requires.
        let ret = unsafe { raw::io_setup(nr, &mut ctx) };
        if ret == 0 {
            Ok(Aio { ctx })
        } else {
            Err(ret)
        }
    }

    /// The completion ring's header, which the kernel maps at the context's address.
    fn ring_header(&self) -> aio_ring {
        // SAFETY: `self.ctx` came from a successful io_setup and is not destroyed yet (destroy
        // consumes `self`), so the kernel's ring mapping (page-aligned, at least one page,
        // readable) starts at that address with this 32-byte header. Volatile: the kernel
        // updates it behind the compiler's back.
        unsafe { std::ptr::read_volatile(self.ctx as *const aio_ring) }
    }

    /// `io_submit` of the single request `cb`.
    ///
    /// # Safety
    /// Every buffer `cb` names must stay valid until its event is reaped or the context is
    /// destroyed (the probe only uses `'static` buffers, or none).
    unsafe fn submit(&self, cb: &mut iocb) -> Result<(), String> {
        let mut list: [*mut iocb; 1] = [cb];
        // SAFETY: `list` holds one pointer to a live iocb; the caller keeps its buffers valid.
        let ret = unsafe { raw::io_submit(self.ctx, 1, list.as_mut_ptr()) };
        match ret {
            1 => Ok(()),
            ret => Err(kernel_error(ret)),
        }
    }

    /// `io_cancel` of the request submitted from `cb`, with `result` as the result buffer.
    fn cancel(&self, cb: &mut iocb, result: &mut io_event) -> c_long {
        // SAFETY: `cb` is readable (the kernel reads its aio_key), `result` writable; the context
        // is live.
        unsafe { raw::io_cancel(self.ctx, cb, result) }
    }

    /// Waits up to [`WAIT`] for the event tagged `data`, dropping any other.
    fn reap(&self, data: u64) -> Result<io_event, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no event within {} ms", WAIT.as_millis()));
            }
            let mut timeout = timespec(left);
            let mut event = io_event::default();
            // SAFETY: the context is live; `event` is writable for the one event asked for and
            // `timeout` is readable.
            let ret = unsafe { raw::io_getevents(self.ctx, 1, 1, &mut event, &mut timeout) };
            match ret {
                1 if event.data == data => return Ok(event),
                // Another request's event, a timeout (the deadline check ends it), a signal.
                0 | 1 => {}
                ret if ret == neg(Errno::INTR) => {}
                ret => return Err(format!("io_getevents: {}", kernel_error(ret))),
            }
        }
    }

    /// `io_pgetevents` with min_nr 0, nr 1, a zero timeout and an empty signal mask.
    fn pgetevents_now(&self) -> c_long {
        let mask: u64 = 0;
        let sigset = __aio_sigset {
            sigmask: (&raw const mask).cast(),
            sigsetsize: raw::KERNEL_SIGSET_SIZE,
        };
        let mut timeout = timespec(Duration::ZERO);
        let mut event = io_event::default();
        // SAFETY: the context is live; `event` is writable for one event; `timeout`, `sigset`
        // and the 8-byte mask it points to are readable locals.
        unsafe { raw::io_pgetevents(self.ctx, 0, 1, &mut event, &mut timeout, &sigset) }
    }

    /// `io_destroy`, and how long it took.
    fn destroy(self) -> (c_long, Duration) {
        let start = Instant::now();
        // SAFETY: consuming `self` ends every use of the context and its ring.
        let ret = unsafe { raw::io_destroy(self.ctx) };
        (ret, start.elapsed())
    }
}

/// A `IOCB_CMD_POLL` request for `POLLIN` on `fd`.
fn poll_iocb(fd: &OwnedFd, tag: u64) -> iocb {
    iocb {
        aio_data: tag,
        aio_lio_opcode: raw::IOCB_CMD_POLL,
        aio_fildes: fd.as_raw_fd() as u32,
        aio_buf: PollFlags::IN.bits() as u64,
        ..iocb::default()
    }
}

/// POLL on a readable eventfd: it completes at once with the ready mask.
fn probe_poll(aio: &Aio) -> String {
    let fd = match eventfd_with(1) {
        Ok(fd) => fd,
        Err(why) => return format!("n/a ({why})"),
    };
    let mut cb = poll_iocb(&fd, TAG_POLL);
    // SAFETY: a POLL request names no buffer.
    if let Err(why) = unsafe { aio.submit(&mut cb) } {
        return format!("unsupported ({why} from io_submit)");
    }
    match aio.reap(TAG_POLL) {
        Ok(event) if event.res < 0 => format!(
            "unsupported ({} in res)",
            errno_name(event.res.saturating_neg())
        ),
        Ok(event) => format!("supported (res=0x{:x})", event.res),
        Err(why) => format!("unknown ({why})"),
    }
}

fn probe_pgetevents(aio: &Aio) -> String {
    match aio.pgetevents_now() {
        ret if ret == neg(Errno::NOSYS) => "unsupported (ENOSYS)".into(),
        ret if raw::is_error(ret) || ret < 0 => format!("error ({})", kernel_error(ret)),
        _ => "supported".into(),
    }
}

/// A small buffered PWRITE with `aio_rw_flags = flag`.
fn probe_rwf(aio: &Aio, file: &File, flag: i32) -> String {
    let mut cb = iocb {
        aio_data: TAG_RWF | flag as u32 as u64,
        aio_lio_opcode: raw::IOCB_CMD_PWRITE,
        aio_fildes: file.as_raw_fd() as u32,
        aio_buf: WRITE_DATA.as_ptr() as u64,
        aio_nbytes: WRITE_DATA.len() as u64,
        aio_rw_flags: flag,
        ..iocb::default()
    };
    // SAFETY: the only buffer is WRITE_DATA, a static.
    if let Err(why) = unsafe { aio.submit(&mut cb) } {
        return format!("rejected ({why} from io_submit)");
    }
    match aio.reap(cb.aio_data) {
        Ok(event) if event.res < 0 => format!(
            "rejected ({} in res)",
            errno_name(event.res.saturating_neg())
        ),
        Ok(_) => "accepted".into(),
        Err(why) => format!("unknown ({why})"),
    }
}

/// io_cancel of a POLL that cannot complete (its eventfd is not readable).
fn probe_cancel(aio: &Aio) -> String {
    let fd = match eventfd_with(0) {
        Ok(fd) => fd,
        Err(why) => return format!("n/a ({why})"),
    };
    let mut cb = poll_iocb(&fd, TAG_CANCEL);
    // SAFETY: a POLL request names no buffer.
    if let Err(why) = unsafe { aio.submit(&mut cb) } {
        return format!("none (POLL unsupported: {why})");
    }
    let sentinel = io_event {
        data: u64::MAX,
        obj: u64::MAX,
        res: i64::MIN,
        res2: i64::MIN,
    };
    let mut result = sentinel;
    let ret = aio.cancel(&mut cb, &mut result);
    let (text, reaped) = if ret == neg(Errno::INPROGRESS) {
        match aio.reap(TAG_CANCEL) {
            Ok(e) => (
                format!("einprogress (event res={} res2={})", e.res, e.res2),
                true,
            ),
            Err(why) => (format!("einprogress ({why})"), false),
        }
    } else if ret == 0 && result == sentinel {
        (
            "result (but the result buffer was not written)".to_string(),
            false,
        )
    } else if ret == 0 {
        (
            format!("result (res={} res2={})", result.res, result.res2),
            true,
        )
    } else {
        (format!("none ({})", kernel_error(ret)), false)
    };
    if !reaped {
        // Still pending (or its event unclaimed): make the eventfd readable and collect it, so
        // nothing is left in flight.
        let _ = rustix::io::write(&fd, &1u64.to_ne_bytes());
        let _ = aio.reap(TAG_CANCEL);
    }
    text
}

fn eventfd_with(count: u64) -> Result<OwnedFd, String> {
    let fd = eventfd(0, EventfdFlags::CLOEXEC)
        .map_err(|e| format!("eventfd: {}", errno_name(e.raw_os_error().into())))?;
    if count > 0 {
        rustix::io::write(&fd, &count.to_ne_bytes())
            .map_err(|e| format!("eventfd write: {}", errno_name(e.raw_os_error().into())))?;
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

fn timespec(d: Duration) -> __kernel_timespec {
    __kernel_timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as _,
        tv_nsec: d.subsec_nanos().into(),
    }
}

/// An integer from `/proc/sys/fs/<name>`, or n/a.
fn sysctl_fs(name: &str) -> Value {
    std::fs::read_to_string(format!("/proc/sys/fs/{name}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map_or(Value::Na, Value::Int)
}

/// What a raw-layer call returned, when it is not the expected success: an errno's name, or the
/// unexpected value itself.
fn kernel_error(ret: c_long) -> String {
    if raw::is_error(ret) {
        #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit (enosys) targets
        errno_name(-i64::from(ret))
    } else {
        format!("unexpected return {ret}")
    }
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
