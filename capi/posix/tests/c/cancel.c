/* cancel.c: every normative sentence of aio_cancel.3p (the seed page), in its order.
 *
 * Requests used: a read on an empty pipe (waits for data: glibc's worker thread is blocked in
 * read(2), libposixaio's request waits in a kernel POLL), a second read on the same pipe (queued
 * behind the first in both implementations), a write of four pipes' worth into a pipe nobody
 * reads yet (in progress once part of it is written), and file reads that have completed. */
#include "check.h"

#include <sys/ioctl.h>

#define SIG (SIGRTMIN + 1)

static volatile int callback_calls;
static void *volatile callback_value;

static void callback(union sigval v)
{
	callback_value = v.sival_ptr;
	callback_calls++;
}

/* Two reads on a fresh empty pipe: a first one waiting for data, b queued behind it. */
static void two_reads(int p[2], struct aiocb *a, struct aiocb *b, char *buf)
{
	if (pipe(p))
		exit(1);
	setup_cb(a, p[0], buf, 8, 0);
	setup_cb(b, p[0], buf + 8, 8, 0);
	aio_read(a);
	aio_read(b);
	sleep_ms(20); /* glibc: its worker thread is in read(2) by now */
}

/* The cleanup: lets requests still waiting complete. */
static void release(int p[2], struct aiocb *a, struct aiocb *b)
{
	if (write(p[1], "0123456789abcdefghijklmnopqrstuv", 32) < 0)
		exit(1);
	wait_done(a);
	wait_done(b);
	close(p[0]);
	close(p[1]);
}

static void cancel_one(void)
{
	const char *text = "aio_cancel(fd, aiocbp) cancels the request aiocbp names";
	NEEDS_ASYNC("C1", text)
	{
		int p[2];
		char buf[16];
		struct aiocb a, b;
		two_reads(p, &a, &b, buf);
		int r = aio_cancel(p[0], &b);
		int eb = aio_error(&b);
		ssize_t rb = aio_return(&b);
		CHECK("C1", text, r == AIO_CANCELED && eb == ECANCELED,
		      "returned %s, then aio_error %d", name_of_cancel(r), eb);
		CHECK("C5", "a cancelled request's error status is ECANCELED, its return status -1",
		      eb == ECANCELED && rb == -1, "aio_error %d, aio_return %zd", eb, rb);
		CHECK("C1b", "the other request on the descriptor is not affected",
		      aio_error(&a) == EINPROGRESS, "aio_error(a) %d", aio_error(&a));
		release(p, &a, &b);
	}
}

static void cancel_all(void)
{
	const char *text = "aio_cancel(fd, NULL) cancels every cancelable request on fd";
	NEEDS_ASYNC("C2", text)
	{
		int p[2], q[2];
		char buf[16], qbuf[8];
		struct aiocb a, b, other;
		two_reads(p, &a, &b, buf);
		if (pipe(q))
			exit(1);
		setup_cb(&other, q[0], qbuf, sizeof qbuf, 0);
		aio_read(&other);
		int r = aio_cancel(p[0], NULL);
		int ea = aio_error(&a), eb = aio_error(&b);
		int some_left = ea == EINPROGRESS || eb == EINPROGRESS;
		int consistent = (r == AIO_CANCELED && !some_left) || (r == AIO_NOTCANCELED && some_left);
		CHECK("C2", text,
		      consistent && eb == ECANCELED && (ea == ECANCELED || ea == EINPROGRESS),
		      "returned %s; a: %d, b: %d", name_of_cancel(r), ea, eb);
		CHECK("C2b", "requests on other descriptors are not affected",
		      aio_error(&other) == EINPROGRESS, "aio_error %d", aio_error(&other));
		OURS("C8a", "cancelable: a read waiting for data on a pipe", r == AIO_CANCELED,
		     "%s, the waiting read's status %d", name_of_cancel(r), ea);
		aio_cancel(q[0], NULL);
		release(p, &a, &b);
		if (write(q[1], "x", 1) < 0)
			exit(1);
		wait_done(&other);
		close(q[0]);
		close(q[1]);
	}
}

static void cancel_notifies(void)
{
	const char *text = "a cancelled request is notified as usual (SIGEV_SIGNAL)";
	NEEDS_ASYNC("C3", text)
	{
		int p[2];
		char buf[16];
		struct aiocb a, b;
		two_reads(p, &a, &b, buf);
		/* b again, this time with a signal */
		aio_cancel(p[0], &b);
		aio_return(&b);
		b.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		b.aio_sigevent.sigev_signo = SIG;
		b.aio_sigevent.sigev_value.sival_ptr = &b;
		aio_read(&b);
		int r = aio_cancel(p[0], &b);
		siginfo_t info;
		int got = wait_signal(SIG, &info, 5000);
		CHECK("C3", text,
		      r == AIO_CANCELED && got && info.si_code == SI_ASYNCIO &&
			      info.si_value.sival_ptr == &b,
		      "cancel %s, signal %s, si_code %d", name_of_cancel(r), got ? "came" : "missing",
		      got ? info.si_code : 0);
		aio_return(&b);

		/* and with SIGEV_THREAD */
		b.aio_sigevent.sigev_notify = SIGEV_THREAD;
		b.aio_sigevent.sigev_notify_function = callback;
		b.aio_sigevent.sigev_notify_attributes = NULL;
		aio_read(&b);
		r = aio_cancel(p[0], &b);
		long long until = now_ms() + 5000;
		while (!callback_calls && now_ms() < until)
			sleep_ms(1);
		CHECK("C3b", "a cancelled request is notified as usual (SIGEV_THREAD)",
		      r == AIO_CANCELED && callback_calls == 1 && callback_value == &b,
		      "cancel %s, %d call(s)", name_of_cancel(r), callback_calls);
		aio_return(&b);
		b.aio_sigevent.sigev_notify = SIGEV_NONE;
		aio_read(&b);
		release(p, &a, &b);
	}
}

/* A write of four pipes' worth into pipe p, in progress once part of it is written. */
static char *big_write(int p[2], struct aiocb *w, size_t *len)
{
	if (pipe(p))
		exit(1);
	*len = 4 * (size_t)fcntl(p[1], F_GETPIPE_SZ);
	char *data = malloc(*len);
	memset(data, 'w', *len);
	setup_cb(w, p[1], data, *len, 0);
	w->aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	w->aio_sigevent.sigev_signo = SIG;
	w->aio_sigevent.sigev_value.sival_ptr = w;
	aio_write(w);
	/* until part of it is in the pipe */
	long long until = now_ms() + 5000;
	int queued = 0;
	while (now_ms() < until && (ioctl(p[0], FIONREAD, &queued) || queued == 0))
		sleep_ms(1);
	sleep_ms(20);
	return data;
}

/* Reads the pipe until `len` bytes came; returns how many did. */
static size_t drain(int fd, size_t len)
{
	char buf[65536];
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void not_cancelable(void)
{
	const char *text = "a request that cannot be cancelled completes normally, later";
	NEEDS_ASYNC("C4", text)
	{
		int p[2];
		size_t len;
		struct aiocb w, second;
		char *data = big_write(p, &w, &len);
		/* RV2: a second write queued behind it (cancelable in both implementations) */
		setup_cb(&second, p[1], data, 16, 0);
		aio_write(&second);
		struct aiocb before;
		memcpy(&before, &w, sizeof w);
		int r = aio_cancel(p[1], NULL);
		int ew = aio_error(&w), es = aio_error(&second);
		CHECK("RV2", "AIO_NOTCANCELED if one cannot be cancelled; aio_error tells the others",
		      r == AIO_NOTCANCELED && ew == EINPROGRESS && es == ECANCELED,
		      "returned %s; in-progress write %d, queued write %d", name_of_cancel(r), ew, es);
		CHECK("C6", "aio_cancel does not modify a request it did not cancel",
		      !memcmp(&before, &w, sizeof w), "the aiocb changed");
		r = aio_cancel(p[1], &w);
		CHECK("C4a", "a write that has written part of its data is in progress: not cancelled",
		      r == AIO_NOTCANCELED && aio_error(&w) == EINPROGRESS, "returned %s",
		      name_of_cancel(r));
		size_t got = drain(p[0], len);
		int finished = wait_done(&w);
		ssize_t n = aio_return(&w);
		siginfo_t info;
		int sig = wait_signal(SIG, &info, 5000);
		CHECK("C4", text,
		      finished && n == (ssize_t)len && got == len && sig && info.si_value.sival_ptr == &w,
		      "completed %d, aio_return %zd of %zu, %zu read, signal %d", finished, n, len, got,
		      sig);
		aio_return(&second);
		free(data);
		close(p[0]);
		close(p[1]);
	}
}

static void all_done(void)
{
	int fd = pattern_file(4096, O_RDONLY);
	unsigned char buf[4096];
	struct aiocb cb;
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	aio_read(&cb);
	int finished = wait_done(&cb);
	struct aiocb before;
	memcpy(&before, &cb, sizeof cb);
	int r1 = aio_cancel(fd, &cb);
	int r2 = aio_cancel(fd, NULL);
	CHECK("RV3", "AIO_ALLDONE if the operations have already completed",
	      finished && r1 == AIO_ALLDONE && r2 == AIO_ALLDONE, "returned %s and %s",
	      name_of_cancel(r1), name_of_cancel(r2));
	CHECK("C6b", "aio_cancel does not modify a completed request",
	      !memcmp(&before, &cb, sizeof cb), "the aiocb changed");
	CHECK("RV3b", "the completed request's status is intact after aio_cancel",
	      aio_error(&cb) == 0 && aio_return(&cb) == 4096 && pattern_ok(buf, 4096, 0), "status %d",
	      aio_error(&cb));
	int fresh = pattern_file(16, O_RDONLY);
	int r3 = aio_cancel(fresh, NULL);
	CHECK("RV3c", "a descriptor with nothing outstanding gives AIO_ALLDONE", r3 == AIO_ALLDONE,
	      "returned %s", name_of_cancel(r3));

	const char *text = "aiocbp not for fildes: unspecified (recorded)";
	struct aiocb other = cb;
	other.aio_fildes = fresh;
	errno = 0;
	int r4 = aio_cancel(fd, &other);
	OURS("C7", text, r4 == -1 && errno == EINVAL, "%s, errno %d", name_of_cancel(r4), errno);
	close(fresh);
	close(fd);
}

static void bad_descriptor(void)
{
	int fd = pattern_file(16, O_RDONLY);
	close(fd);
	errno = 0;
	int r1 = aio_cancel(fd, NULL);
	int e1 = errno;
	errno = 0;
	int r2 = aio_cancel(-1, NULL);
	int e2 = errno;
	CHECK("RV4", "EBADF: fildes is not a valid file descriptor",
	      r1 == -1 && e1 == EBADF && r2 == -1 && e2 == EBADF,
	      "closed fd: %d (errno %d), -1: %d (errno %d)", r1, e1, r2, e2);
}

static void cancelable(void)
{
	/* C8: which operations are cancelable here (recorded for both). */
	if (!sync_mode) {
		int sv[2];
		char buf[8];
		struct aiocb cb;
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		setup_cb(&cb, sv[0], buf, sizeof buf, 0);
		aio_read(&cb);
		sleep_ms(20);
		int r = aio_cancel(sv[0], &cb);
		OURS("C8b", "cancelable: a read waiting for data on a socket", r == AIO_CANCELED, "%s",
		     name_of_cancel(r));
		if (r != AIO_CANCELED) {
			if (write(sv[1], "x", 1) < 0)
				exit(1);
			wait_done(&cb);
		}
		close(sv[0]);
		close(sv[1]);
	}
	int fd = pattern_file(1 << 20, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		skip("C8c", "not cancelable: a file read the kernel is executing", "no O_DIRECT in /tmp");
		return;
	}
	void *buf;
	if (posix_memalign(&buf, 4096, 1 << 20))
		exit(1);
	struct aiocb cb;
	setup_cb(&cb, fd, buf, 1 << 20, 0);
	aio_read(&cb);
	int r = aio_cancel(fd, &cb);
	const char *what = aio_error(&cb) == ECANCELED ? "cancelled" : "completes normally";
	wait_done(&cb);
	OURS("C8c", "not cancelable: a file read the kernel is executing (O_DIRECT, 1 MiB)",
	     r == AIO_NOTCANCELED || r == AIO_ALLDONE, "%s (%s)", name_of_cancel(r), what);
	aio_return(&cb);
	free(buf);
	close(fd);
}

int main(int argc, char **argv)
{
	begin(argc, argv);
	block_signal(SIG);
	cancel_one();
	cancel_all();
	cancel_notifies();
	not_cancelable();
	all_done();
	bad_descriptor();
	cancelable();
	return end();
}
