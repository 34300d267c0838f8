/* error.c: every normative sentence of aio_error.3p. */
#include "check.h"

static struct aiocb *handler_cb;
static volatile int handler_status = -2;

static void on_usr1(int sig)
{
	(void)sig;
	handler_status = aio_error(handler_cb); /* async-signal-safe */
}

int main(int argc, char **argv)
{
	begin(argc, argv);
	unsigned char buf[4096];
	struct aiocb cb;

	int fd = pattern_file(4096, O_RDONLY);
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	int r = aio_read(&cb);
	int done = wait_done(&cb);
	CHECK("E1", "a request that completed successfully: aio_error returns 0",
	      r == 0 && done && aio_error(&cb) == 0, "aio_read %d, aio_error %d", r, aio_error(&cb));
	aio_return(&cb);

	/* The error status is the errno of the corresponding read/write/fsync. */
	int wronly = pattern_file(4096, O_WRONLY);
	setup_cb(&cb, wronly, buf, sizeof buf, 0);
	r = aio_read(&cb);
	int e = errno;
	int got = outcome(r, e, &cb);
	CHECK("E2", "a failed read: the errno read() sets (EBADF on a write-only descriptor)",
	      got == EBADF, "got %d (%s)", got, r == -1 ? "refused at once" : "error status");
	note("E2a", "where a read on a write-only file descriptor is reported",
	     r == -1 ? "aio_read returns -1" : "the error status");
	aio_return(&cb);
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	r = aio_write(&cb);
	e = errno;
	got = outcome(r, e, &cb);
	CHECK("E2b", "a failed write: the errno write() sets (EBADF on a read-only descriptor)",
	      got == EBADF, "got %d", got);
	aio_return(&cb);
	int p[2];
	if (pipe(p))
		return 1;
	setup_cb(&cb, p[1], NULL, 0, 0);
	r = aio_fsync(O_SYNC, &cb);
	e = errno;
	got = outcome(r, e, &cb);
	CHECK("E2c", "a failed fsync: the errno fsync() sets (EINVAL on a pipe)", got == EINVAL,
	      "got %d", got);
	aio_return(&cb);
	setup_cb(&cb, p[1], NULL, 0, 0);
	r = aio_fsync(O_DSYNC, &cb);
	e = errno;
	got = outcome(r, e, &cb);
	CHECK("E2d", "a failed fdatasync: the errno fdatasync() sets (EINVAL on a pipe)",
	      got == EINVAL, "got %d", got);
	aio_return(&cb);

	const char *text = "a request that has not completed: EINPROGRESS";
	NEEDS_ASYNC("E3", text)
	{
		char small[8];
		setup_cb(&cb, p[0], small, sizeof small, 0);
		aio_read(&cb);
		sleep_ms(20);
		int e1 = aio_error(&cb);
		CHECK("E3", text, e1 == EINPROGRESS, "aio_error %d", e1);
		/* a copy of the block names no request */
		struct aiocb copy = cb;
		errno = 0;
		int e2 = aio_error(&copy);
		OURS("E4", "a copy of an in-progress aiocb names no request: -1 EINVAL", e2 == -1 && errno == EINVAL,
		     "aio_error %d, errno %d", e2, errno);
		if (write(p[1], "12345678", 8) != 8)
			return 1;
		wait_done(&cb);
		CHECK("E3b", "then, once it completes: 0", aio_error(&cb) == 0 && aio_return(&cb) == 8,
		      "aio_error %d", aio_error(&cb));
	}

	setup_cb(&cb, fd, buf, sizeof buf, 0);
	aio_read(&cb);
	wait_done(&cb);
	ssize_t n = aio_return(&cb);
	errno = 0;
	int after = aio_error(&cb);
	note("E5", "aio_error after aio_return (may fail with EINVAL)", "%d, errno %d (return was %zd)",
	     after, errno, n);

	struct aiocb never;
	memset(&never, 0, sizeof never);
	errno = 0;
	int zero = aio_error(&never);
	note("E6", "aio_error on an aiocb never submitted (undefined)", "%d, errno %d", zero, errno);

	/* aio_error is async-signal-safe: from a handler, on a completed request. */
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	aio_read(&cb);
	wait_done(&cb);
	handler_cb = &cb;
	signal(SIGUSR1, on_usr1);
	raise(SIGUSR1);
	CHECK("E7", "aio_error from a signal handler", handler_status == 0, "got %d", handler_status);
	aio_return(&cb);
	return end();
}
