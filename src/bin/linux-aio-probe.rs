//! `linux-aio-probe [--json]`: reports what the running kernel's native AIO offers, as a table
//! or as one JSON object whose every key and value docs/probe.md documents (schema version
//! 1). From a checkout: `cargo run -- --json`; installed by `cargo install linux-aio`.
//!
//! AIO goes through the safe API (`Context`, `Request`, `Context::scope`); the raw layer is used
//! only to read the ring header fields the report shows. Every kernel answer, failures included,
//! becomes a value in the report: the program never panics on what the kernel says, and exits 0
//! whenever it wrote a report (a kernel without AIO is a valid report). Built for
//! `x86_64-unknown-linux-musl` it is a static binary that can run as, or from, an initramfs
//! `/init`.

#[cfg(any(target_os = "linux", target_os = "android"))]
fn main() {
    probe::main()
}

/// Elsewhere the crate has the raw layer alone (every call `ENOSYS`): nothing to probe.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn main() {
    eprintln!("linux-aio-probe: Linux native AIO exists on Linux and Android only");
    std::process::exit(1);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod probe {
    use std::fs::File;
    use std::io::Write as _;
    use std::path::PathBuf;
    use std::time::{Duration, Instant, SystemTime};

    use linux_aio::raw::{self, aio_ring};
    use linux_aio::{Context, Event, Request, RwFlags, Scope, ScopedCancel, SigSet};
    use rustix::event::{eventfd, EventfdFlags, PollFlags};
    use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
    use rustix::io::Errno;

    /// The version of the JSON report's shape (docs/probe.md). Any change to its keys or to
    /// their values, additions included, gets a new number.
    const SCHEMA: i64 = 1;
    /// How long to wait for a completion that should arrive at once.
    const WAIT: Duration = Duration::from_secs(1);
    /// Slots asked of `io_setup`; the probe has at most one request in flight.
    const NR_EVENTS: u32 = 16;
    /// The bytes each `RWF_*` test writes.
    static WRITE_DATA: [u8; 8] = *b"aioprobe";

    /// The `aio_rw_flags` values tried on a buffered `IOCB_CMD_PWRITE`: key in `rwf`, label,
    /// flags.
    const RWF_TESTS: [(&str, &str, RwFlags); 6] = [
        ("hipri", "RWF_HIPRI", RwFlags::HIPRI),
        ("dsync", "RWF_DSYNC", RwFlags::DSYNC),
        ("sync", "RWF_SYNC", RwFlags::SYNC),
        ("nowait", "RWF_NOWAIT", RwFlags::NOWAIT),
        ("append", "RWF_APPEND", RwFlags::APPEND),
        (
            "unknown_bit30",
            "RWF unknown (1<<30)",
            RwFlags::from_bits_retain(1 << 30),
        ),
    ];

    fn usage() -> String {
        format!(
            "usage: linux-aio-probe [--json]\n\n\
             Reports what the running kernel's native AIO offers: a table, or with --json one\n\
             JSON object (schema {SCHEMA}, every key documented in the linux-aio crate's\n\
             docs/probe.md)."
        )
    }

    pub fn main() {
        let mut json = false;
        for arg in std::env::args_os().skip(1) {
            match arg.to_str() {
                Some("--json") => json = true,
                Some("-h" | "--help") => {
                    let _ = writeln!(std::io::stdout(), "{}", usage());
                    return;
                }
                _ => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "linux-aio-probe: unknown argument {arg:?}\n{}",
                        usage()
                    );
                    std::process::exit(2);
                }
            }
        }

        let report = probe();
        let mut out = std::io::stdout().lock();
        let written = if json {
            report.write_json(&mut out)
        } else {
            report.write_table(&mut out)
        }
        .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            // A reader that stopped reading (`linux-aio-probe | head -1`) has what it wanted.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            // A full disk, say: the report is not there, and the exit code says so
            // (docs/probe.md). (A closed descriptor 1 is not seen here: std's runtime opens
            // /dev/null in its place at start-up, as for any Rust program.)
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "linux-aio-probe: writing the report: {e}"
                );
                std::process::exit(1);
            }
        }
    }

    /// The context, while it is still one: a scope whose wait failed for good destroys it in
    /// place (its id becomes 0, see `Scope`'s drop), and a kernel (or a seccomp filter) that
    /// answers io_setup with success but no id gives one that never was. Every row after that
    /// is null (not applicable), not an EINVAL presented as the kernel's answer.
    fn live(ctx: &mut Option<Context>) -> Option<&mut Context> {
        if ctx.as_ref().is_some_and(|c| c.id() == 0) {
            *ctx = None;
        }
        ctx.as_mut()
    }

    /// `std::env::temp_dir()`, but `/tmp` when `TMPDIR` is set and empty (std hands back the
    /// empty path, which would put the test file in the current directory).
    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir();
        if dir.as_os_str().is_empty() {
            PathBuf::from("/tmp")
        } else {
            dir
        }
    }

    /// Runs every probe, in the report's order.
    fn probe() -> Report {
        let mut report = Report::default();
        report.add("schema", "report schema", Json::Int(SCHEMA), None);
        report.add("arch", "architecture", Json::str(raw::ARCH), None);
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        report.add("kernel_release", "kernel release", Json::Str(release), None);
        // Read before io_setup, so that fs.aio-nr does not count the probe's own context.
        let aio_max_nr = sysctl_fs("aio-max-nr");
        let aio_nr = sysctl_fs("aio-nr");

        let ctx = Context::new(NR_EVENTS);
        let (aio, aio_text) = match &ctx {
            Ok(_) => (Aio::Available, "available".to_string()),
            Err(Errno::NOSYS) => (Aio::Unavailable, "unavailable (ENOSYS)".to_string()),
            Err(e) => {
                // The only cause io_setup(2) gives for EAGAIN with a valid nr_events.
                let cause = (*e == Errno::AGAIN).then_some("aio_max_nr");
                let text = match cause {
                    Some(_) => "io_setup failed (EAGAIN: fs.aio-max-nr reached)".to_string(),
                    None => format!("io_setup failed ({})", name(*e)),
                };
                (Aio::SetupFailed(*e, cause), text)
            }
        };
        report.add("aio", "aio", aio.json(), Some(aio_text));
        report.add("aio_max_nr", "fs.aio-max-nr", int_or_null(aio_max_nr), None);
        report.add("aio_nr", "fs.aio-nr", int_or_null(aio_nr), None);
        let mut ctx = ctx.ok();

        // Every row below needs a context: null (n/a) without one.
        let ring = live(&mut ctx).map(|c| ring_header(c));
        let (ring_json, ring_text) = match ring {
            Some(r) => (
                Json::Obj(vec![
                    ("magic", Json::Int(r.magic.into())),
                    ("nr", Json::Int(r.nr.into())),
                    ("header_length", Json::Int(r.header_length.into())),
                    ("incompat_features", Json::Int(r.incompat_features.into())),
                ]),
                Some(format!(
                    "magic 0x{:08x}, nr {}, header_length {}, incompat_features {}",
                    r.magic, r.nr, r.header_length, r.incompat_features
                )),
            ),
            None => (Json::Null, None),
        };
        report.add("ring", "ring header", ring_json, ring_text);
        let reaping = live(&mut ctx).map(|c| c.user_space_reaping());
        report.add(
            "user_space_reaping",
            "user-space reaping usable",
            reaping.map_or(Json::Null, Json::Bool),
            reaping.map(|b| (if b { "yes" } else { "no" }).to_string()),
        );

        let poll = live(&mut ctx).map(probe_poll);
        report.add(
            "poll",
            "POLL",
            poll.as_ref().map_or(Json::Null, |p| p.json(&POLL_WORDS)),
            poll.as_ref().map(|p| p.text(&POLL_WORDS)),
        );
        let pgetevents = live(&mut ctx).map(probe_pgetevents);
        report.add(
            "io_pgetevents",
            "io_pgetevents",
            pgetevents.as_ref().map_or(Json::Null, Pgetevents::json),
            pgetevents.as_ref().map(Pgetevents::text),
        );

        // Buffered-write flags depend on the filesystem: say which directory the file is in.
        let dir = temp_dir().display().to_string();
        match live(&mut ctx) {
            None => report.add("rwf", "RWF flags", Json::Null, None),
            Some(ctx) => {
                let temp = TempFile::create();
                let mut fields = vec![("dir", Json::Str(dir.clone()))];
                let mut rows = vec![("RWF test directory", dir)];
                for (key, label, flags) in RWF_TESTS {
                    let outcome = match &temp {
                        Ok(temp) => probe_rwf(ctx, &temp.file, flags),
                        Err(e) => Req::Error(Failure::new(*e, Where::Prepare("temp file"))),
                    };
                    fields.push((key, outcome.json(&RWF_WORDS)));
                    rows.push((label, outcome.text(&RWF_WORDS)));
                }
                report.add_rows("rwf", Json::Obj(fields), rows);
            }
        }

        let cancel = live(&mut ctx).map(probe_cancel);
        report.add(
            "cancel",
            "cancel of a pending POLL",
            cancel.as_ref().map_or(Json::Null, Cancel::json),
            cancel.as_ref().map(Cancel::text),
        );

        live(&mut ctx);
        let destroy = ctx.map(|ctx| {
            let start = Instant::now();
            let ret = ctx.destroy();
            // Tenths of a millisecond, the precision the report shows.
            let ms = (start.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
            (ret, ms)
        });
        let (destroy_json, destroy_text) = match destroy {
            None => (Json::Null, None),
            Some((ret, ms)) => (
                Json::Obj(vec![
                    (
                        "status",
                        Json::str(if ret.is_ok() { "ok" } else { "failed" }),
                    ),
                    ("errno", errno_or_null(ret.err())),
                    ("ms", Json::Tenths(ms)),
                ]),
                Some(match ret {
                    Ok(()) => format!("{ms:.1} ms"),
                    Err(e) => format!("failed ({}) after {ms:.1} ms", name(e)),
                }),
            ),
        };
        report.add("io_destroy", "io_destroy", destroy_json, destroy_text);
        report
    }

    // -----------------------------------------------------------------------------------------
    // The probes' outcomes

    /// `aio`: what `io_setup` answered.
    enum Aio {
        Available,
        Unavailable,
        /// Any other error, with its cause where io_setup(2) names one.
        SetupFailed(Errno, Option<&'static str>),
    }

    impl Aio {
        fn json(&self) -> Json {
            let (status, errno, cause) = match self {
                Aio::Available => ("available", None, None),
                Aio::Unavailable => ("unavailable", Some(Errno::NOSYS), None),
                Aio::SetupFailed(e, cause) => ("setup_failed", Some(*e), *cause),
            };
            Json::Obj(vec![
                ("status", Json::str(status)),
                ("errno", errno_or_null(errno)),
                ("cause", cause.map_or(Json::Null, Json::str)),
            ])
        }
    }

    /// Which step an errno came from (JSON `where`).
    #[derive(Clone, Copy)]
    enum Where {
        /// `io_submit` refused the request.
        Submit,
        /// The request's completion carried the error (negative `res`).
        Res,
        /// Waiting for the completion (`io_getevents`) failed.
        Wait,
        /// `io_cancel` failed.
        Cancel,
        /// The probe's own preparation (what it made) failed.
        Prepare(&'static str),
    }

    impl Where {
        fn key(self) -> &'static str {
            match self {
                Where::Submit => "submit",
                Where::Res => "res",
                Where::Wait => "wait",
                Where::Cancel => "cancel",
                Where::Prepare(_) => "prepare",
            }
        }
    }

    /// An errno and where it came from.
    #[derive(Clone, Copy)]
    struct Failure {
        errno: i64,
        at: Where,
    }

    impl Failure {
        fn new(errno: Errno, at: Where) -> Failure {
            Failure {
                errno: errno.raw_os_error().into(),
                at,
            }
        }

        fn text(self) -> String {
            let e = errno_name(self.errno);
            match self.at {
                Where::Submit => format!("{e} from io_submit"),
                Where::Res => format!("{e} in res"),
                Where::Wait => format!("io_getevents: {e}"),
                Where::Cancel => format!("io_cancel: {e}"),
                Where::Prepare(what) => format!("{what}: {e}"),
            }
        }
    }

    /// What one submitted request (POLL, or a write with `RWF_*` flags) came to.
    enum Req {
        /// Completed with this `res` (>= 0).
        Done(i64),
        /// The kernel refused it: at `io_submit`, or in the completion.
        Refused(Failure),
        /// No completion within [`WAIT`].
        Timeout,
        /// The probe could not prepare it, or waiting for it failed.
        Error(Failure),
    }

    /// How a request probe words its outcomes: the statuses for done and refused, and whether
    /// the table shows `res` in hex (a POLL's ready mask) or in decimal (bytes written).
    struct Words {
        done: &'static str,
        refused: &'static str,
        hex: bool,
    }

    const POLL_WORDS: Words = Words {
        done: "supported",
        refused: "unsupported",
        hex: true,
    };
    const RWF_WORDS: Words = Words {
        done: "accepted",
        refused: "rejected",
        hex: false,
    };

    impl Req {
        fn json(&self, words: &Words) -> Json {
            let (status, failure, res) = match self {
                Req::Done(res) => (words.done, None, Some(*res)),
                Req::Refused(f) => (words.refused, Some(*f), None),
                Req::Timeout => ("timeout", None, None),
                Req::Error(f) => ("error", Some(*f), None),
            };
            Json::Obj(vec![
                ("status", Json::str(status)),
                ("errno", failure.map_or(Json::Null, |f| errno_json(f.errno))),
                (
                    "where",
                    failure.map_or(Json::Null, |f| Json::str(f.at.key())),
                ),
                ("res", res.map_or(Json::Null, Json::Int)),
            ])
        }

        fn text(&self, words: &Words) -> String {
            match self {
                Req::Done(res) if words.hex => format!("{} (res=0x{res:x})", words.done),
                Req::Done(res) => format!("{} (res={res})", words.done),
                Req::Refused(f) => format!("{} ({})", words.refused, f.text()),
                Req::Timeout => format!("timeout (no event within {} ms)", WAIT.as_millis()),
                Req::Error(f) => format!("error ({})", f.text()),
            }
        }
    }

    /// What `io_pgetevents` answered.
    enum Pgetevents {
        Supported,
        Unsupported,
        Error(Errno),
    }

    impl Pgetevents {
        fn json(&self) -> Json {
            let (status, errno) = match self {
                Pgetevents::Supported => ("supported", None),
                Pgetevents::Unsupported => ("unsupported", Some(Errno::NOSYS)),
                Pgetevents::Error(e) => ("error", Some(*e)),
            };
            Json::Obj(vec![
                ("status", Json::str(status)),
                ("errno", errno_or_null(errno)),
            ])
        }

        fn text(&self) -> String {
            match self {
                Pgetevents::Supported => "supported".into(),
                Pgetevents::Unsupported => "unsupported (ENOSYS)".into(),
                Pgetevents::Error(e) => format!("error ({})", name(*e)),
            }
        }
    }

    /// What reaping a cancelled request's event gave.
    enum Reaped {
        /// Its `res` and `res2`.
        Event(i64, i64),
        /// io_cancel said it returned the event but left the result buffer unwritten.
        Unwritten,
        Failed(Failure),
        Timeout,
    }

    /// What `io_cancel` of a pending POLL did.
    enum Cancel {
        /// EINPROGRESS (Linux 3.12 and later): the event comes through the ring.
        InProgress(Reaped),
        /// 0 and the event in the result buffer (before 3.12).
        Result(Reaped),
        /// Nothing cancelled: the errno of io_cancel.
        None(Failure),
        /// The POLL to cancel could not be made or submitted.
        Error(Failure),
    }

    impl Cancel {
        fn json(&self) -> Json {
            let (status, failure, event) = match self {
                Cancel::InProgress(r) | Cancel::Result(r) => {
                    let status = match self {
                        Cancel::InProgress(_) => "einprogress",
                        _ => "result",
                    };
                    match r {
                        Reaped::Event(res, res2) => (status, None, Some((*res, *res2))),
                        Reaped::Failed(f) => (status, Some(*f), None),
                        Reaped::Unwritten | Reaped::Timeout => (status, None, None),
                    }
                }
                Cancel::None(f) => ("none", Some(*f), None),
                Cancel::Error(f) => ("error", Some(*f), None),
            };
            Json::Obj(vec![
                ("status", Json::str(status)),
                ("errno", failure.map_or(Json::Null, |f| errno_json(f.errno))),
                (
                    "where",
                    failure.map_or(Json::Null, |f| Json::str(f.at.key())),
                ),
                ("res", event.map_or(Json::Null, |e| Json::Int(e.0))),
                ("res2", event.map_or(Json::Null, |e| Json::Int(e.1))),
            ])
        }

        fn text(&self) -> String {
            let reaped = |r: &Reaped| match r {
                Reaped::Event(res, res2) => format!("event res={res} res2={res2}"),
                Reaped::Unwritten => "but the result buffer was not written".into(),
                Reaped::Failed(f) => f.text(),
                Reaped::Timeout => format!("no event within {} ms", WAIT.as_millis()),
            };
            match self {
                Cancel::InProgress(r) => format!("einprogress ({})", reaped(r)),
                Cancel::Result(r) => format!("result ({})", reaped(r)),
                Cancel::None(f) => format!("none ({})", f.text()),
                Cancel::Error(f) => format!("error ({})", f.text()),
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The probes

    /// The completion ring's header, which the kernel maps at the context's id.
    fn ring_header(ctx: &Context) -> aio_ring {
        // SAFETY: `ctx` is live (borrowed), was just created and has a nonzero id (`live`
        // checked: a faked io_setup success leaves the zeroed id, which is never a ring): the
        // kernel mapped the ring (page-aligned, at least one page, readable) there, and only io_destroy unmaps
        // it, which needs the context by value (or a scope's last-resort drain; no scope has
        // run yet). Volatile: the kernel updates the header behind the compiler's back.
        unsafe { std::ptr::read_volatile(ctx.id() as *const aio_ring) }
    }

    /// Waits up to [`WAIT`] for the completion of the scope's one request (at once if a cancel
    /// has already handed it to the scope): `None` if none came.
    fn reap(s: &Scope<'_, '_, 1>) -> Result<Option<Event>, Failure> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match s.wait(s.in_flight(), Some(left)) {
                Ok(mut done) => {
                    if let Some(c) = done.next() {
                        return Ok(Some(c.event));
                    }
                    // Timed out: the deadline check ends the loop.
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(Failure::new(e, Where::Wait)),
            }
        }
    }

    /// A request a probe submits.
    enum What<'a> {
        Poll(BorrowedFd<'a>),
        Write(BorrowedFd<'a>, RwFlags),
    }

    /// Submits `what` in a one-slot scope and waits for its completion.
    fn submit_one(ctx: &mut Context, what: What<'_>) -> Req {
        ctx.scope::<1, _>(|s| {
            let req = match what {
                What::Poll(fd) => Request::poll(fd, PollFlags::IN),
                What::Write(fd, flags) => Request::write(fd, &WRITE_DATA, 0).flags(flags),
            };
            if let Err(r) = s.submit(req) {
                return Req::Refused(Failure::new(r.error, Where::Submit));
            }
            // The raw `res`, not `Event::result`, which would panic on a value no errno has.
            match reap(s) {
                Ok(Some(e)) if e.as_raw().res < 0 => Req::Refused(Failure {
                    errno: e.as_raw().res.saturating_neg(),
                    at: Where::Res,
                }),
                Ok(Some(e)) => Req::Done(e.as_raw().res),
                Ok(None) => Req::Timeout,
                Err(f) => Req::Error(f),
            }
        })
    }

    /// POLL on a readable eventfd: it completes at once with the ready mask.
    fn probe_poll(ctx: &mut Context) -> Req {
        match eventfd_with(1) {
            Ok(fd) => submit_one(ctx, What::Poll(fd.as_fd())),
            Err(f) => Req::Error(f),
        }
    }

    /// `io_pgetevents` with min_nr 0, nr 1, a zero timeout and an empty signal mask.
    fn probe_pgetevents(ctx: &mut Context) -> Pgetevents {
        // With min 0 a wait reading the ring would return before making the system call.
        let reaping = ctx.user_space_reaping();
        ctx.set_user_space_reaping(false);
        let mut events = [Event::default()];
        let ret = ctx.wait_with_sigmask(&mut events, 0, Some(Duration::ZERO), &SigSet::empty());
        ctx.set_user_space_reaping(reaping);
        match ret {
            Ok(_) => Pgetevents::Supported,
            Err(Errno::NOSYS) => Pgetevents::Unsupported,
            Err(e) => Pgetevents::Error(e),
        }
    }

    /// A small buffered PWRITE with `aio_rw_flags = flags`.
    fn probe_rwf(ctx: &mut Context, file: &File, flags: RwFlags) -> Req {
        submit_one(ctx, What::Write(file.as_fd(), flags))
    }

    /// io_cancel of a POLL that cannot complete (its eventfd is not readable).
    fn probe_cancel(ctx: &mut Context) -> Cancel {
        let fd = match eventfd_with(0) {
            Ok(fd) => fd,
            Err(f) => return Cancel::Error(f),
        };
        ctx.scope::<1, _>(|s| {
            let ticket = match s.submit(Request::poll(fd.as_fd(), PollFlags::IN)) {
                Ok(ticket) => ticket,
                Err(r) => return Cancel::Error(Failure::new(r.error, Where::Submit)),
            };
            let reaped = |unwritten_possible: bool| match reap(s) {
                // Before 3.12 io_cancel returns the event in its result buffer, which the safe
                // API pre-fills with zeros (the kernel writes obj, the iocb's nonzero address).
                Ok(Some(e)) if unwritten_possible && e.iocb_address() == 0 => Reaped::Unwritten,
                Ok(Some(e)) => Reaped::Event(e.as_raw().res, e.as_raw().res2),
                Ok(None) => Reaped::Timeout,
                Err(f) => Reaped::Failed(f),
            };
            let outcome = match s.cancel(ticket) {
                // Linux 3.12 and later: the event comes through the ring.
                Ok(ScopedCancel::InProgress) => Cancel::InProgress(reaped(false)),
                Ok(ScopedCancel::Canceled) => Cancel::Result(reaped(true)),
                // The POLL cannot have completed (its eventfd is not readable) and the scope
                // has not reaped it: this is io_cancel's EINVAL ("not cancelled"; EAGAIN
                // before 3.12, which had no POLL).
                Ok(ScopedCancel::AlreadyComplete | ScopedCancel::NotCancelable) => {
                    Cancel::None(Failure::new(Errno::INVAL, Where::Cancel))
                }
                Err(e) => Cancel::None(Failure::new(e, Where::Cancel)),
            };
            if s.in_flight() > 0 {
                // Still pending: make the eventfd readable so that it completes and the
                // scope's drain, which waits without a timeout, returns.
                let _ = rustix::io::write(&fd, &1u64.to_ne_bytes());
            }
            outcome
        })
    }

    fn eventfd_with(count: u64) -> Result<OwnedFd, Failure> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC)
            .map_err(|e| Failure::new(e, Where::Prepare("eventfd")))?;
        if count > 0 {
            rustix::io::write(&fd, &count.to_ne_bytes())
                .map_err(|e| Failure::new(e, Where::Prepare("eventfd write")))?;
        }
        Ok(fd)
    }

    /// An empty file in [`temp_dir`], removed on drop.
    struct TempFile {
        path: PathBuf,
        file: File,
    }

    impl TempFile {
        fn create() -> Result<TempFile, Errno> {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!("linux-aio-probe-{}-{nanos}", std::process::id());
            let path = temp_dir().join(name);
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
            Ok(TempFile { path, file })
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// An integer from `/proc/sys/fs/<name>`, if readable.
    fn sysctl_fs(name: &str) -> Option<i64> {
        std::fs::read_to_string(format!("/proc/sys/fs/{name}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn int_or_null(n: Option<i64>) -> Json {
        n.map_or(Json::Null, Json::Int)
    }

    // -----------------------------------------------------------------------------------------
    // Errno names

    fn errno_or_null(errno: Option<Errno>) -> Json {
        errno.map_or(Json::Null, |e| errno_json(e.raw_os_error().into()))
    }

    fn errno_json(errno: i64) -> Json {
        Json::Str(errno_name(errno))
    }

    /// The symbolic name of `errno`.
    fn name(errno: Errno) -> String {
        errno_name(errno.raw_os_error().into())
    }

    /// The symbolic name of a Linux errno (rustix's constants carry the target's numbering),
    /// or `E<number>` for a number this list does not name. docs/probe.md lists the same names.
    fn errno_name(errno: i64) -> String {
        const NAMES: &[(Errno, &str)] = &[
            (Errno::PERM, "EPERM"),
            (Errno::NOENT, "ENOENT"),
            (Errno::SRCH, "ESRCH"),
            (Errno::INTR, "EINTR"),
            (Errno::IO, "EIO"),
            (Errno::NXIO, "ENXIO"),
            (Errno::TOOBIG, "E2BIG"),
            (Errno::BADF, "EBADF"),
            (Errno::AGAIN, "EAGAIN"),
            (Errno::NOMEM, "ENOMEM"),
            (Errno::ACCESS, "EACCES"),
            (Errno::FAULT, "EFAULT"),
            (Errno::BUSY, "EBUSY"),
            (Errno::EXIST, "EEXIST"),
            (Errno::XDEV, "EXDEV"),
            (Errno::NODEV, "ENODEV"),
            (Errno::NOTDIR, "ENOTDIR"),
            (Errno::ISDIR, "EISDIR"),
            (Errno::INVAL, "EINVAL"),
            (Errno::NFILE, "ENFILE"),
            (Errno::MFILE, "EMFILE"),
            (Errno::NOTTY, "ENOTTY"),
            (Errno::TXTBSY, "ETXTBSY"),
            (Errno::FBIG, "EFBIG"),
            (Errno::NOSPC, "ENOSPC"),
            (Errno::SPIPE, "ESPIPE"),
            (Errno::ROFS, "EROFS"),
            (Errno::PIPE, "EPIPE"),
            (Errno::RANGE, "ERANGE"),
            (Errno::NAMETOOLONG, "ENAMETOOLONG"),
            (Errno::NOSYS, "ENOSYS"),
            (Errno::LOOP, "ELOOP"),
            (Errno::OVERFLOW, "EOVERFLOW"),
            (Errno::OPNOTSUPP, "EOPNOTSUPP"),
            (Errno::NOBUFS, "ENOBUFS"),
            (Errno::TIMEDOUT, "ETIMEDOUT"),
            (Errno::ALREADY, "EALREADY"),
            (Errno::INPROGRESS, "EINPROGRESS"),
            (Errno::STALE, "ESTALE"),
            (Errno::DQUOT, "EDQUOT"),
            (Errno::CANCELED, "ECANCELED"),
        ];
        NAMES
            .iter()
            .find(|(e, _)| i64::from(e.raw_os_error()) == errno)
            .map_or_else(|| format!("E{errno}"), |(_, name)| (*name).to_string())
    }

    // -----------------------------------------------------------------------------------------
    // The report

    /// A JSON value.
    enum Json {
        Null,
        Bool(bool),
        Int(i64),
        /// A number written with one decimal.
        Tenths(f64),
        Str(String),
        Obj(Vec<(&'static str, Json)>),
    }

    impl Json {
        fn str(s: &str) -> Json {
            Json::Str(s.to_string())
        }

        fn write(&self, out: &mut String, indent: usize) {
            match self {
                Json::Null => out.push_str("null"),
                Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                Json::Int(n) => out.push_str(&n.to_string()),
                Json::Tenths(x) if x.is_finite() => out.push_str(&format!("{x:.1}")),
                Json::Tenths(_) => out.push_str("null"),
                Json::Str(s) => json_string(out, s),
                Json::Obj(fields) => write_object(out, fields, indent),
            }
        }
    }

    /// An object: on one line if its values are scalars (and it is not the top level), else
    /// one key a line.
    fn write_object(out: &mut String, fields: &[(&'static str, Json)], indent: usize) {
        let flat = fields.iter().all(|(_, v)| !matches!(v, Json::Obj(_)));
        if fields.is_empty() {
            out.push_str("{}");
        } else if flat && indent > 0 {
            out.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_string(out, key);
                out.push_str(": ");
                value.write(out, indent + 1);
            }
            out.push('}');
        } else {
            out.push_str("{\n");
            for (i, (key, value)) in fields.iter().enumerate() {
                out.push_str(&"  ".repeat(indent + 1));
                json_string(out, key);
                out.push_str(": ");
                value.write(out, indent + 1);
                out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(indent));
            out.push('}');
        }
    }

    /// `s` as a JSON string literal: quotes, backslashes and control characters escaped.
    fn json_string(out: &mut String, s: &str) {
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
    }

    #[derive(Default)]
    struct Report {
        /// The top-level JSON keys and values, in order.
        fields: Vec<(&'static str, Json)>,
        /// The table: label, text.
        rows: Vec<(&'static str, String)>,
    }

    impl Report {
        /// Key `key` with `value`, shown in the table as `label: text` (without a text: the
        /// value itself, or n/a for null).
        fn add(
            &mut self,
            key: &'static str,
            label: &'static str,
            value: Json,
            text: Option<String>,
        ) {
            let text = text.unwrap_or_else(|| match &value {
                Json::Null => "n/a".to_string(),
                Json::Str(s) => s.clone(),
                other => {
                    let mut s = String::new();
                    other.write(&mut s, 1);
                    s
                }
            });
            self.rows.push((label, text));
            self.fields.push((key, value));
        }

        /// Key `key` with `value`, shown in the table as several rows.
        fn add_rows(&mut self, key: &'static str, value: Json, rows: Vec<(&'static str, String)>) {
            self.rows.extend(rows);
            self.fields.push((key, value));
        }

        fn write_table(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
            let width = self
                .rows
                .iter()
                .map(|(label, _)| label.len() + 1)
                .max()
                .unwrap_or(0);
            for (label, text) in &self.rows {
                writeln!(out, "{:<width$}  {text}", format!("{label}:"))?;
            }
            Ok(())
        }

        fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
            let mut s = String::new();
            write_object(&mut s, &self.fields, 0);
            writeln!(out, "{s}")
        }
    }
}
