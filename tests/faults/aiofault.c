/* aiofault.c: the kernel eras and faults of issue 15, without a custom kernel.
 *
 * Built as a shared library and loaded with LD_PRELOAD (tests/support/faults.rs does both). Its
 * constructor reads LINUX_AIO_FAULTS and installs a seccomp filter on the process:
 *   - plain refusals are SECCOMP_RET_ERRNO (io_pgetevents ENOSYS, madvise(MADV_WIPEONFORK)
 *     EINVAL), decided by the filter alone;
 *   - everything else is SECCOMP_RET_TRAP: the SIGSYS handler below reads the arguments from the
 *     ucontext registers, decides, issues the real call itself when the emulated kernel would,
 *     and writes the return value back into the result register. The filter lets through every
 *     system call made from one instruction: the `syscall`/`svc` of raw_syscall() below (the
 *     filter compares seccomp_data.instruction_pointer with the address right after it).
 * Only the AIO calls named in the configuration are trapped; every other call runs untouched.
 * The filter, the handler and the counters are inherited by fork; an exec keeps the filter but
 * not the handler, so a process under emulation must not exec (the next image would die of
 * SIGSYS).
 *
 * LINUX_AIO_FAULTS: directives separated by commas.
 *   era=4.18      IOCB_CMD_POLL refused by io_submit with EINVAL (POLL arrived in 4.19)
 *   era=4.17      the above, and io_pgetevents ENOSYS (4.18)
 *   era=4.13      the above, and madvise(MADV_WIPEONFORK) EINVAL (4.14)
 *   cancel=pre3.12  io_cancel as before Linux 3.12: a cancelled request's event is taken out of
 *                 the completion ring and copied to *result, and io_cancel returns 0 (the real
 *                 kernel's -EINPROGRESS path, turned back into the old contract); "not
 *                 cancelled" is EAGAIN instead of EINVAL, as the io_cancel(2) page says. Kernels
 *                 that old had no POLL, so POLL stands in for the requests they could cancel.
 *   hold_fd=N     (with cancel=pre3.12) io_submit accepts requests on descriptor N without
 *                 giving them to the kernel: they stay in flight until io_cancel hands their
 *                 event back (res -ECANCELED). A cancellable read with a buffer, for the scope.
 *   aio_max_nr=N  io_setup fails with EAGAIN once the nr_events of this process's live contexts
 *                 would pass N (fs.aio-max-nr, without touching the system-wide counter).
 *   CALL=ERR[@FIRST][*COUNT]   CALL is setup, destroy, submit, cancel, getevents or pgetevents;
 *                 ERR an errno name or number. Calls number FIRST, FIRST+1, ... (from 0) fail
 *                 with ERR, COUNT times (default 1; `*` or `*0`: for ever) without reaching the
 *                 kernel.
 *   submit=ERR[@FIRST|#NBYTES][*COUNT]   for io_submit the rule is about requests: request
 *                 number FIRST of the process (counting accepted ones), or every request of
 *                 NBYTES bytes (aio_nbytes), is refused. As the kernel does, io_submit then
 *                 returns how many came before it in the batch, and -ERR only when it comes
 *                 first; COUNT counts those -ERR returns.
 *   log           one line on stderr per emulated decision.
 *
 * Exported for the tests (found with dlsym): linux_aio_faults_status() is 0 when the emulation
 * is installed, 1 without LINUX_AIO_FAULTS, a negated errno if installing failed (-EINVAL for a
 * bad directive, -ENOTSUP for an architecture without a handler); linux_aio_faults_fired() is
 * how many decisions differed from the real kernel's.
 *
 * Architectures: x86_64 and aarch64. Elsewhere the constructor installs nothing and reports
 * -ENOTSUP. The handler uses no libc function: it may run inside any of them. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/aio_abi.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#define AIO_RING_MAGIC 0xa10a10a1u

/* ---- the one instruction allowed through the filter ---- */

long aiofault_raw_syscall(long nr, long a, long b, long c, long d, long e, long f);
extern const char aiofault_raw_syscall_ret[];

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
__asm__(".text\n"
	".globl aiofault_raw_syscall\n"
	".type aiofault_raw_syscall,@function\n"
	"aiofault_raw_syscall:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"	mov %r9, %r8\n"
	"	mov 8(%rsp), %r9\n"
	"	syscall\n"
	".globl aiofault_raw_syscall_ret\n"
	"aiofault_raw_syscall_ret:\n"
	"	ret\n"
	".size aiofault_raw_syscall, .-aiofault_raw_syscall\n");
#define ARG(uc, i)                                                                                \
	((uc)->uc_mcontext.gregs[(const int[]){REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8,          \
						REG_R9}[i]])
#define RESULT(uc) ((uc)->uc_mcontext.gregs[REG_RAX])
#elif defined(__aarch64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
__asm__(".text\n"
	".globl aiofault_raw_syscall\n"
	".type aiofault_raw_syscall,%function\n"
	"aiofault_raw_syscall:\n"
	"	mov x8, x0\n"
	"	mov x0, x1\n"
	"	mov x1, x2\n"
	"	mov x2, x3\n"
	"	mov x3, x4\n"
	"	mov x4, x5\n"
	"	mov x5, x6\n"
	"	svc #0\n"
	".globl aiofault_raw_syscall_ret\n"
	"aiofault_raw_syscall_ret:\n"
	"	ret\n"
	".size aiofault_raw_syscall, .-aiofault_raw_syscall\n");
#define ARG(uc, i) ((uc)->uc_mcontext.regs[i])
#define RESULT(uc) ((uc)->uc_mcontext.regs[0])
#else
#define NO_HANDLER 1
#endif

#define RAW(nr, a, b, c, d, e, f)                                                                 \
	aiofault_raw_syscall((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/* ---- configuration ---- */

enum { C_SETUP, C_DESTROY, C_SUBMIT, C_CANCEL, C_GETEVENTS, C_PGETEVENTS, C_N };
static const char *const call_names[C_N] = {"setup",  "destroy",   "submit",
					    "cancel", "getevents", "pgetevents"};
#ifndef NO_HANDLER
static const long call_nrs[C_N] = {SYS_io_setup,  SYS_io_destroy,   SYS_io_submit,
				   SYS_io_cancel, SYS_io_getevents, SYS_io_pgetevents};
#endif

struct rule {
	int err;       /* 0: no rule */
	long first;    /* first call (or request, for submit) that fails */
	long count;    /* how many times; 0 for ever */
	long nbytes;   /* submit only: refuse requests of this aio_nbytes instead (-1: by number) */
	long seen;     /* calls seen so far */
	long fired;    /* times it failed a call */
};

static struct rule rules[C_N];
static int poll_einval, pgetevents_enosys, wipeonfork_einval, cancel_pre312, logging;
static long hold_fd = -1;
static unsigned long aio_max_nr;
static long submitted; /* requests accepted so far (for submit rules) */
static long fired;
static int status = 1;

int linux_aio_faults_status(void)
{
	return status;
}

long linux_aio_faults_fired(void)
{
	return __atomic_load_n(&fired, __ATOMIC_SEQ_CST);
}

static const struct {
	const char *name;
	int value;
} errnos[] = {
	{"EPERM", EPERM},   {"EINTR", EINTR},   {"EIO", EIO},	    {"EBADF", EBADF},
	{"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EFAULT", EFAULT}, {"EINVAL", EINVAL},
	{"ENOSYS", ENOSYS}, {"ENOSPC", ENOSPC}, {"EOPNOTSUPP", EOPNOTSUPP},
};

static int parse_errno(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
		if (strlen(errnos[i].name) == len && !strncmp(errnos[i].name, s, len))
			return errnos[i].value;
	char *end;
	long v = strtol(s, &end, 10);
	return (end == s + len && v > 0 && v < 4096) ? (int)v : 0;
}

static int parse_rule(struct rule *r, const char *v, size_t len)
{
	const char *end = v + len, *at = memchr(v, '@', len), *star = memchr(v, '*', len);
	const char *hash = memchr(v, '#', len);
	const char *name_end = at ? at : hash ? hash : star ? star : end;
	r->err = parse_errno(v, (size_t)(name_end - v));
	r->first = 0;
	r->count = 1;
	r->nbytes = hash ? strtol(hash + 1, NULL, 10) : -1;
	if (!r->err)
		return -1;
	if (at)
		r->first = strtol(at + 1, NULL, 10);
	if (star)
		r->count = star + 1 < end ? strtol(star + 1, NULL, 10) : 0;
	return 0;
}

static int parse(const char *cfg)
{
	while (*cfg) {
		const char *comma = strchr(cfg, ',');
		size_t len = comma ? (size_t)(comma - cfg) : strlen(cfg);
		const char *eq = memchr(cfg, '=', len);
		size_t klen = eq ? (size_t)(eq - cfg) : len;
		const char *v = eq ? eq + 1 : "";
		size_t vlen = eq ? len - klen - 1 : 0;
#define KEY(k) (klen == strlen(k) && !strncmp(cfg, k, klen))
#define VAL(s) (vlen == strlen(s) && !strncmp(v, s, vlen))
		int ok = 0;
		if (KEY("era")) {
			ok = VAL("4.18") || VAL("4.17") || VAL("4.13");
			poll_einval = 1;
			pgetevents_enosys |= !VAL("4.18");
			wipeonfork_einval |= VAL("4.13");
		} else if (KEY("cancel") && VAL("pre3.12")) {
			/* cancel=ERR... falls through to the rules below. */
			ok = cancel_pre312 = 1;
		} else if (KEY("hold_fd")) {
			hold_fd = strtol(v, NULL, 10);
			ok = hold_fd >= 0;
		} else if (KEY("aio_max_nr")) {
			aio_max_nr = strtoul(v, NULL, 10);
			ok = aio_max_nr > 0;
		} else if (KEY("log")) {
			ok = logging = 1;
		} else {
			for (int c = 0; c < C_N; c++)
				if (KEY(call_names[c]))
					ok = parse_rule(&rules[c], v, vlen) == 0;
		}
		if (!ok)
			return -1;
		cfg += len + (comma ? 1 : 0);
	}
	return (hold_fd >= 0 && !cancel_pre312) ? -1 : 0;
}

#ifndef NO_HANDLER

/* ---- helpers usable inside the handler ---- */

static void say(const char *what, long a, long b)
{
	if (!logging)
		return;
	char line[160];
	size_t n = 0;
	const char *p = "aiofault: ";
	while (*p)
		line[n++] = *p++;
	for (p = what; *p && n < 100; p++)
		line[n++] = *p;
	long vals[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		line[n++] = ' ';
		unsigned long u = vals[i] < 0 ? (unsigned long)-vals[i] : (unsigned long)vals[i];
		if (vals[i] < 0)
			line[n++] = '-';
		char digits[24];
		int d = 0;
		do
			digits[d++] = (char)('0' + u % 10);
		while ((u /= 10) && d < 24);
		while (d)
			line[n++] = digits[--d];
	}
	line[n++] = '\n';
	RAW(SYS_write, 2, line, n, 0, 0, 0);
}

/* Copies n bytes from (or to) this process's memory at an address that may be unmapped:
 * process_vm_readv/writev report EFAULT where a plain load would crash the handler. */
static int peek(const void *from, void *to, size_t n)
{
	struct iovec local = {to, n}, remote = {(void *)from, n};
	long pid = RAW(SYS_getpid, 0, 0, 0, 0, 0, 0);
	return RAW(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0) == (long)n ? 0 : -EFAULT;
}

static int poke(void *to, const void *from, size_t n)
{
	struct iovec local = {(void *)from, n}, remote = {to, n};
	long pid = RAW(SYS_getpid, 0, 0, 0, 0, 0, 0);
	return RAW(SYS_process_vm_writev, pid, &local, 1, &remote, 1, 0) == (long)n ? 0 : -EFAULT;
}

/* True if the rule would fail the call (or request) at this index. */
static int applies(struct rule *r, long index)
{
	if (!r->err || index < r->first)
		return 0;
	long done = __atomic_load_n(&r->fired, __ATOMIC_SEQ_CST);
	return !r->count || done < r->count;
}

static void consume(struct rule *r)
{
	__atomic_add_fetch(&r->fired, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&fired, 1, __ATOMIC_SEQ_CST);
}

/* True if the rule fails the call at this index, counting the failure. */
static int fires(struct rule *r, long index)
{
	if (!applies(r, index))
		return 0;
	consume(r);
	return 1;
}

/* ---- live contexts (aio_max_nr) and held requests (hold_fd) ---- */

#define MAX_LIVE 512
static struct {
	unsigned long ctx, nr;
} live[MAX_LIVE];

static unsigned long live_total(void)
{
	unsigned long sum = 0;
	for (int i = 0; i < MAX_LIVE; i++)
		if (__atomic_load_n(&live[i].ctx, __ATOMIC_SEQ_CST))
			sum += live[i].nr;
	return sum;
}

static void live_add(unsigned long ctx, unsigned long nr)
{
	for (int i = 0; i < MAX_LIVE; i++) {
		unsigned long zero = 0;
		if (__atomic_compare_exchange_n(&live[i].ctx, &zero, ctx, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST)) {
			live[i].nr = nr;
			return;
		}
	}
}

static void live_remove(unsigned long ctx)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (__atomic_load_n(&live[i].ctx, __ATOMIC_SEQ_CST) == ctx) {
			live[i].nr = 0;
			__atomic_store_n(&live[i].ctx, 0, __ATOMIC_SEQ_CST);
		}
}

#define MAX_HELD 64
static struct {
	unsigned long ctx; /* 0: free */
	uint64_t obj, data;
} held[MAX_HELD];

static int hold(unsigned long ctx, uint64_t obj, uint64_t data)
{
	for (int i = 0; i < MAX_HELD; i++) {
		unsigned long zero = 0;
		if (__atomic_compare_exchange_n(&held[i].ctx, &zero, ctx, 0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST)) {
			held[i].obj = obj;
			held[i].data = data;
			return 0;
		}
	}
	return -EAGAIN;
}

/* ---- the emulated calls ---- */

static long emulate_setup(long nr, long ctxp)
{
	if (fires(&rules[C_SETUP], __atomic_fetch_add(&rules[C_SETUP].seen, 1, __ATOMIC_SEQ_CST))) {
		say("io_setup refused", nr, -rules[C_SETUP].err);
		return -rules[C_SETUP].err;
	}
	unsigned long old = 1;
	int checkable = (unsigned)nr > 0 && peek((void *)ctxp, &old, sizeof old) == 0 && old == 0;
	if (aio_max_nr && checkable && live_total() + (unsigned)nr > aio_max_nr) {
		__atomic_add_fetch(&fired, 1, __ATOMIC_SEQ_CST);
		say("io_setup past aio_max_nr", nr, (long)live_total());
		return -EAGAIN;
	}
	long ret = RAW(SYS_io_setup, nr, ctxp, 0, 0, 0, 0);
	unsigned long ctx;
	if (ret == 0 && aio_max_nr && peek((void *)ctxp, &ctx, sizeof ctx) == 0)
		live_add(ctx, (unsigned)nr);
	return ret;
}

static long emulate_destroy(long ctx)
{
	if (fires(&rules[C_DESTROY],
		  __atomic_fetch_add(&rules[C_DESTROY].seen, 1, __ATOMIC_SEQ_CST))) {
		say("io_destroy refused", ctx, -rules[C_DESTROY].err);
		return -rules[C_DESTROY].err;
	}
	long ret = RAW(SYS_io_destroy, ctx, 0, 0, 0, 0, 0);
	if (ret == 0) {
		live_remove((unsigned long)ctx);
		for (int i = 0; i < MAX_HELD; i++)
			if (__atomic_load_n(&held[i].ctx, __ATOMIC_SEQ_CST) == (unsigned long)ctx)
				__atomic_store_n(&held[i].ctx, 0, __ATOMIC_SEQ_CST);
	}
	return ret;
}

/* Why the emulated kernel refuses the request: the rule's errno, -EINVAL for the era's POLL,
 * 0 if it does not, HOLD to hold it. Unreadable pointers are left to the real kernel (EFAULT). */
#define HOLD 0x10000
static int refusal(struct iocb *const *slot, long position)
{
	struct iocb *cbp, cb;
	if (peek(slot, &cbp, sizeof cbp) || peek(cbp, &cb, sizeof cb))
		return 0;
	if (poll_einval && cb.aio_lio_opcode == IOCB_CMD_POLL)
		return -EINVAL; /* the era's refusal, not the rule's */
	struct rule *r = &rules[C_SUBMIT];
	if (r->nbytes >= 0 ? r->err && cb.aio_nbytes == (uint64_t)r->nbytes && applies(r, 0)
			   : applies(r, position))
		return r->err;
	if (hold_fd >= 0 && cb.aio_fildes == (uint32_t)hold_fd)
		return HOLD;
	return 0;
}

static long emulate_submit(long ctx, long nr, struct iocb **iocbs)
{
	if (nr <= 0)
		return RAW(SYS_io_submit, ctx, nr, iocbs, 0, 0, 0);
	long accepted = 0;
	while (accepted < nr) {
		/* The run of requests the real kernel takes as they are. */
		long run = 0, why = 0;
		long base = __atomic_load_n(&submitted, __ATOMIC_SEQ_CST);
		while (accepted + run < nr &&
		       !(why = refusal(iocbs + accepted + run, base + accepted + run)))
			run++;
		if (run > 0) {
			long ret = RAW(SYS_io_submit, ctx, run, iocbs + accepted, 0, 0, 0);
			if (ret < 0)
				return accepted ? accepted : ret;
			__atomic_add_fetch(&submitted, ret, __ATOMIC_SEQ_CST);
			accepted += ret;
			if (ret < run)
				return accepted;
		}
		if (accepted == nr)
			break;
		if (why != HOLD) {
			/* Only the refusal io_submit reports counts: a batch stopped before the request
			 * refuses it again when it comes first. */
			if (accepted)
				return accepted;
			if (why > 0)
				consume(&rules[C_SUBMIT]);
			else
				__atomic_add_fetch(&fired, 1, __ATOMIC_SEQ_CST);
			say("io_submit refused request", base, why > 0 ? -why : why);
			return why > 0 ? -why : why;
		}
		/* Held, on a context the kernel knows. */
		struct iocb *cbp, cb;
		peek(iocbs + accepted, &cbp, sizeof cbp);
		peek(cbp, &cb, sizeof cb);
		long probe = RAW(SYS_io_getevents, ctx, 0, 0, 0, 0, 0);
		if (probe < 0 || hold((unsigned long)ctx, (uint64_t)(uintptr_t)cbp, cb.aio_data) < 0)
			return accepted ? accepted : (probe < 0 ? probe : -EAGAIN);
		__atomic_add_fetch(&fired, 1, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&submitted, 1, __ATOMIC_SEQ_CST);
		say("io_submit held request", base + accepted, (long)cb.aio_fildes);
		accepted++;
	}
	return accepted;
}

struct ring {
	unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
	struct io_event events[];
};

/* Takes the event of the request at obj out of the ring (the oldest events move up one slot
 * and head advances past the hole), waiting up to 5 s for the kernel to post it. Assumes
 * nobody else reaps the context meanwhile (the tests reap where they cancel). */
static int lift(unsigned long ctx, uint64_t obj, struct io_event *out)
{
	struct ring *r = (struct ring *)ctx;
	if (r->magic != AIO_RING_MAGIC || r->header_length != sizeof *r || r->nr == 0)
		return -1;
	unsigned nr = r->nr;
	for (int tries = 0; tries < 50000; tries++) {
		unsigned head = __atomic_load_n(&r->head, __ATOMIC_RELAXED) % nr;
		unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) % nr;
		for (unsigned i = head; i != tail; i = (i + 1) % nr) {
			if (r->events[i].obj != obj)
				continue;
			*out = r->events[i];
			for (unsigned j = i; j != head; j = (j + nr - 1) % nr)
				r->events[j] = r->events[(j + nr - 1) % nr];
			__atomic_store_n(&r->head, (head + 1) % nr, __ATOMIC_RELEASE);
			return 0;
		}
		struct timespec pause = {0, 100000};
		RAW(SYS_nanosleep, &pause, 0, 0, 0, 0, 0);
	}
	return -1;
}

static long emulate_cancel(long ctx, struct iocb *iocb, struct io_event *result)
{
	if (fires(&rules[C_CANCEL], __atomic_fetch_add(&rules[C_CANCEL].seen, 1, __ATOMIC_SEQ_CST))) {
		say("io_cancel refused", ctx, -rules[C_CANCEL].err);
		return -rules[C_CANCEL].err;
	}
	if (!cancel_pre312)
		return RAW(SYS_io_cancel, ctx, iocb, result, 0, 0, 0);
	for (int i = 0; i < MAX_HELD; i++) {
		if (__atomic_load_n(&held[i].ctx, __ATOMIC_SEQ_CST) != (unsigned long)ctx ||
		    held[i].obj != (uint64_t)(uintptr_t)iocb)
			continue;
		struct io_event ev = {held[i].data, held[i].obj, -ECANCELED, 0};
		if (poke(result, &ev, sizeof ev))
			return -EFAULT;
		__atomic_store_n(&held[i].ctx, 0, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&fired, 1, __ATOMIC_SEQ_CST);
		say("io_cancel of a held request: 0", ctx, (long)ev.data);
		return 0;
	}
	long ret = RAW(SYS_io_cancel, ctx, iocb, result, 0, 0, 0);
	/* EINVAL for a context the kernel knows (an empty io_getevents accepts it) is "not
	 * cancelled", which those kernels called EAGAIN; a bad context stays EINVAL. */
	if (ret == -EINVAL && RAW(SYS_io_getevents, ctx, 0, 0, 0, 0, 0) == 0) {
		__atomic_add_fetch(&fired, 1, __ATOMIC_SEQ_CST);
		say("io_cancel: EINVAL becomes EAGAIN", ctx, 0);
		return -EAGAIN;
	}
	if (ret != -EINPROGRESS)
		return ret;
	struct io_event ev;
	if (lift((unsigned long)ctx, (uint64_t)(uintptr_t)iocb, &ev)) {
		say("io_cancel: the event never came, EINPROGRESS stands", ctx, 0);
		return ret;
	}
	__atomic_add_fetch(&fired, 1, __ATOMIC_SEQ_CST);
	say("io_cancel: event moved from the ring to *result, 0", ctx, ev.res);
	return poke(result, &ev, sizeof ev) ? -EFAULT : 0;
}

static long emulate_getevents(int call, long a[6])
{
	struct rule *r = &rules[call];
	if (fires(r, __atomic_fetch_add(&r->seen, 1, __ATOMIC_SEQ_CST))) {
		say(call == C_GETEVENTS ? "io_getevents refused" : "io_pgetevents refused", a[0],
		    -r->err);
		return -r->err;
	}
	return RAW(call_nrs[call], a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void on_sigsys(int sig, siginfo_t *info, void *context)
{
	(void)sig;
	ucontext_t *uc = context;
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = (long)ARG(uc, i);
	long nr = info->si_syscall, ret;
	if (nr == SYS_io_setup)
		ret = emulate_setup(a[0], a[1]);
	else if (nr == SYS_io_destroy)
		ret = emulate_destroy(a[0]);
	else if (nr == SYS_io_submit)
		ret = emulate_submit(a[0], a[1], (struct iocb **)a[2]);
	else if (nr == SYS_io_cancel)
		ret = emulate_cancel(a[0], (struct iocb *)a[1], (struct io_event *)a[2]);
	else if (nr == SYS_io_getevents)
		ret = emulate_getevents(C_GETEVENTS, a);
	else if (nr == SYS_io_pgetevents)
		ret = emulate_getevents(C_PGETEVENTS, a);
	else
		ret = RAW(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	RESULT(uc) = ret;
}

/* ---- the filter ---- */

#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define LOAD_AT(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define IF_EQ(k, skip_if_not) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), 0, (skip_if_not))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))

static int install(void)
{
	int trap[C_N] = {0};
	for (int c = 0; c < C_N; c++)
		trap[c] = rules[c].err != 0;
	trap[C_SUBMIT] |= poll_einval || hold_fd >= 0;
	trap[C_CANCEL] |= cancel_pre312;
	trap[C_SETUP] |= aio_max_nr != 0;
	trap[C_DESTROY] |= aio_max_nr != 0 || hold_fd >= 0;

	uint64_t ip = (uint64_t)(uintptr_t)aiofault_raw_syscall_ret;
	size_t ip_off = offsetof(struct seccomp_data, instruction_pointer);
	size_t arg2 = offsetof(struct seccomp_data, args) + 2 * sizeof(uint64_t);
	struct sock_filter f[64];
	int n = 0;
	f[n++] = (struct sock_filter)LOAD(arch);
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 1, 0);
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 4, 0, 0); /* other arch: ALLOW */
	/* From the handler's own instruction: allowed, whatever it is. */
	f[n++] = (struct sock_filter)LOAD_AT(ip_off);
	f[n++] = (struct sock_filter)IF_EQ((uint32_t)ip, 3);
	f[n++] = (struct sock_filter)LOAD_AT(ip_off + 4);
	f[n++] = (struct sock_filter)IF_EQ((uint32_t)(ip >> 32), 1);
	f[n++] = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)LOAD(nr);
	if (wipeonfork_einval) {
		f[n++] = (struct sock_filter)IF_EQ(SYS_madvise, 4);
		f[n++] = (struct sock_filter)LOAD_AT(arg2);
		f[n++] = (struct sock_filter)IF_EQ(MADV_WIPEONFORK, 1);
		f[n++] = (struct sock_filter)RET(SECCOMP_RET_ERRNO | EINVAL);
		f[n++] = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
	}
	if (pgetevents_enosys) {
		f[n++] = (struct sock_filter)IF_EQ(SYS_io_pgetevents, 1);
		f[n++] = (struct sock_filter)RET(SECCOMP_RET_ERRNO | ENOSYS);
	}
	for (int c = 0; c < C_N; c++) {
		if (!trap[c])
			continue;
		f[n++] = (struct sock_filter)IF_EQ(call_nrs[c], 1);
		f[n++] = (struct sock_filter)RET(SECCOMP_RET_TRAP);
	}
	f[n++] = (struct sock_filter)RET(SECCOMP_RET_ALLOW);

	struct sock_fprog prog = {(unsigned short)n, f};
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	/* SA_NODEFER: a signal handler that makes an AIO call while this one runs is emulated too;
	 * an empty mask: signals interrupt a real call made here as they would interrupt it in the
	 * kernel (EINTR). */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL))
		return -errno;
	/* The handler reads the caller's memory through process_vm_readv: check it works here. */
	long probe = 0, copy = 1;
	if (peek(&probe, &copy, sizeof probe) || copy != 0)
		return -EPERM;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		return -errno;
	return 0;
}

#endif /* !NO_HANDLER */

__attribute__((constructor)) static void aiofault_init(void)
{
	const char *cfg = getenv("LINUX_AIO_FAULTS");
	if (!cfg)
		return;
	if (parse(cfg)) {
		status = -EINVAL;
		return;
	}
#ifdef NO_HANDLER
	status = -ENOTSUP;
#else
	status = install();
#endif
}
