/* check.h: what the POSIX AIO test programs share, and the lines tests/posix.rs reads.
 *
 * Each program is an ordinary program built against the system's <aio.h>. tests/posix.rs runs
 * it three ways: with libposixaio preloaded ("ours"), with it preloaded in synchronous mode
 * ("ours-sync": no kernel AIO, or LINUX_AIO_POSIX_FORCE_SYNC=1), and alone ("glibc": the C
 * library's own POSIX AIO); argv[1] says which. It prints one line per check:
 *   ok <id> <sentence>
 *   FAIL <id> <sentence> => <what happened>
 *   skip <id> <sentence> => <why>
 *   note <id> <sentence> => <what this implementation does>   (implementation-defined, or a
 *        choice of libposixaio's that glibc does not share: recorded, not judged)
 * and "lib <path>" (where aio_read came from). It exits 0 unless a check failed.
 *
 * <id> is the sentence's key in capi/README.md's side-by-side table. */
#ifndef POSIX_CHECK_H
#define POSIX_CHECK_H

#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static int ours;      /* libposixaio is loaded */
static int sync_mode; /* ... in synchronous mode (no kernel AIO) */
static int failures;

static void line(const char *kind, const char *id, const char *text, const char *fmt, va_list ap)
{
	printf("%s %s %s", kind, id, text);
	if (fmt) {
		printf(" => ");
		vprintf(fmt, ap);
	}
	printf("\n");
	fflush(stdout);
}

static void report_detail(int passed, int detail, const char *id, const char *text,
			  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	line(passed ? "ok" : "FAIL", id, text, passed && !detail ? NULL : fmt, ap);
	va_end(ap);
	if (!passed)
		failures++;
}

static inline void note(const char *id, const char *text, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	line("note", id, text, fmt, ap);
	va_end(ap);
}

static inline void skip(const char *id, const char *text, const char *why)
{
	printf("skip %s %s => %s\n", id, text, why);
	fflush(stdout);
}

/* A check every POSIX implementation must pass. */
#define CHECK(id, text, cond, ...) report_detail((cond), 0, (id), (text), __VA_ARGS__)

/* libposixaio's documented choice where POSIX leaves it open: judged for ours, recorded (as a
 * note with the same detail) for the C library's implementation. */
#define OURS(id, text, cond, ...)                                                         \
	do {                                                                              \
		if (ours)                                                                 \
			report_detail((cond), 1, (id), (text), __VA_ARGS__);              \
		else                                                                      \
			note((id), (text), __VA_ARGS__);                                  \
	} while (0)

/* Checks that need requests to wait (a stream read with no data would block the call in
 * synchronous mode). */
#define NEEDS_ASYNC(id, text)                                                             \
	if (sync_mode) {                                                                  \
		skip((id), (text), "synchronous mode: a stream request blocks in aio_read");  \
	} else

static inline const char *name_of_cancel(int r)
{
	switch (r) {
	case AIO_CANCELED: return "AIO_CANCELED";
	case AIO_NOTCANCELED: return "AIO_NOTCANCELED";
	case AIO_ALLDONE: return "AIO_ALLDONE";
	default: return "-1";
	}
}

static void begin(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "glibc";
	ours = !strncmp(mode, "ours", 4);
	sync_mode = !strcmp(mode, "ours-sync");
	Dl_info info;
	if (dladdr((void *)aio_read, &info) && info.dli_fname)
		printf("lib %s\n", info.dli_fname);
	fflush(stdout);
	/* A hung call must not hang the suite. */
	alarm(60);
}

static int end(void)
{
	return failures ? 1 : 0;
}

static inline long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

/* A temporary file of `len` bytes, byte i = (i * 7 + 3) & 0xff, unlinked at once, opened with
 * `flags` (-1 if O_DIRECT is among them and the file system refuses it). */
static inline int pattern_file(size_t len, int flags)
{
	char path[] = "/tmp/linux-aio-posix-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(1);
	}
	unsigned char *buf = malloc(len ? len : 1);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	if (write(fd, buf, len) != (ssize_t)len) {
		perror("write");
		exit(1);
	}
	free(buf);
	int again = open(path, flags);
	unlink(path);
	close(fd);
	if (again < 0 && (flags & O_DIRECT))
		return -1; /* a file system without O_DIRECT (tmpfs) */
	if (again < 0) {
		perror("open");
		exit(1);
	}
	return again;
}

static inline int pattern_ok(const unsigned char *buf, size_t len, size_t offset)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != (unsigned char)((offset + i) * 7 + 3))
			return 0;
	return 1;
}

static inline void setup_cb(struct aiocb *cb, int fd, void *buf, size_t n, off_t offset)
{
	memset(cb, 0, sizeof *cb);
	cb->aio_fildes = fd;
	cb->aio_buf = buf;
	cb->aio_nbytes = n;
	cb->aio_offset = offset;
	cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

/* Waits (up to 10 s) until cb is no longer in progress; 0 if it is. */
static inline int wait_done(struct aiocb *cb)
{
	const struct aiocb *list[1] = {cb};
	struct timespec ten = {10, 0};
	long long until = now_ms() + 10000;
	while (aio_error(cb) == EINPROGRESS) {
		if (now_ms() > until)
			return 0;
		aio_suspend(list, 1, &ten);
	}
	return 1;
}

/* Waits up to `ms` for cb to leave EINPROGRESS; 1 if it did. */
static inline int done_within(struct aiocb *cb, int ms)
{
	long long until = now_ms() + ms;
	while (aio_error(cb) == EINPROGRESS) {
		if (now_ms() > until)
			return 0;
		sleep_ms(1);
	}
	return 1;
}

/* A thread that writes `len` bytes of `data` to `fd` after `ms` milliseconds. */
struct later {
	int fd;
	const void *data;
	size_t len;
	int ms;
	pthread_t thread;
};

static inline void *later_main(void *arg)
{
	struct later *l = arg;
	sleep_ms(l->ms);
	if (write(l->fd, l->data, l->len) < 0)
		perror("later write");
	return NULL;
}

static inline void write_later(struct later *l, int fd, const void *data, size_t len, int ms)
{
	l->fd = fd;
	l->data = data;
	l->len = len;
	l->ms = ms;
	pthread_create(&l->thread, NULL, later_main, l);
}

/* Runs fn in a child process; returns its exit status, or 1000 + the signal that killed it (a
 * call that crashes the C library's implementation, recorded as such). */
static inline int in_child(int (*fn)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn());
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* Waits up to `ms` for signal `sig` (blocked by the caller); its siginfo in *info. */
static inline int wait_signal(int sig, siginfo_t *info, int ms)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	int r;
	do
		r = sigtimedwait(&set, info, &t);
	while (r < 0 && errno == EINTR);
	return r == sig;
}

static inline void block_signal(int sig)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Threads of this process (/proc/self/task). */
static inline int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char l[256];
	int n = -1;
	while (f && fgets(l, sizeof l, f))
		if (!strncmp(l, "Threads:", 8))
			n = atoi(l + 8);
	if (f)
		fclose(f);
	return n;
}

/* What became of a request: the errno of a refused call (ret -1, errno e), or its final error
 * status (POSIX lets either report the conditions aio_read lists). */
static inline int outcome(int ret, int e, struct aiocb *cb)
{
	if (ret == -1)
		return e;
	wait_done(cb);
	return aio_error(cb);
}

#endif
