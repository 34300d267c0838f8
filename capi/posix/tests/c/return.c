/* return.c: every normative sentence of aio_return.3p. */
#include "check.h"

static struct aiocb *handler_cb;
static volatile ssize_t handler_return = -2;

static void on_usr1(int sig)
{
	(void)sig;
	handler_return = aio_return(handler_cb); /* async-signal-safe */
}

static ssize_t run(struct aiocb *cb, int (*submit)(struct aiocb *))
{
	if (submit(cb) == -1)
		return -2;
	wait_done(cb);
	return aio_return(cb);
}

int main(int argc, char **argv)
{
	begin(argc, argv);
	unsigned char buf[4096];
	struct aiocb cb;
	int fd = pattern_file(100, O_RDWR);

	setup_cb(&cb, fd, buf, sizeof buf, 0);
	ssize_t a = run(&cb, aio_read);
	setup_cb(&cb, fd, buf, sizeof buf, 90);
	ssize_t b = run(&cb, aio_read);
	setup_cb(&cb, fd, buf, sizeof buf, 100);
	ssize_t c = run(&cb, aio_read);
	CHECK("R1", "the return status is what read() returns (100, 10 and 0 bytes near EOF)",
	      a == 100 && b == 10 && c == 0 && pattern_ok(buf, 10, 90), "%zd, %zd, %zd", a, b, c);
	memset(buf, 'z', 50);
	setup_cb(&cb, fd, buf, 50, 200);
	ssize_t w = run(&cb, aio_write);
	struct stat st;
	fstat(fd, &st);
	CHECK("R1b", "... what write() returns", w == 50 && st.st_size == 250, "%zd, size %lld", w,
	      (long long)st.st_size);
	setup_cb(&cb, fd, NULL, 0, 0);
	ssize_t s = aio_fsync(O_SYNC, &cb) ? -2 : (wait_done(&cb), aio_return(&cb));
	CHECK("R1c", "... what fsync() returns (0)", s == 0, "%zd", s);
	int wronly = pattern_file(16, O_WRONLY);
	setup_cb(&cb, wronly, buf, 16, 0);
	int r = aio_read(&cb);
	ssize_t f = r == -1 ? -1 : (wait_done(&cb), aio_return(&cb));
	CHECK("R1d", "... and -1 for a failed request", f == -1, "%zd", f);

	/* "If the error status is EINPROGRESS, the return status is undefined." */
	const char *text = "aio_return while in progress (undefined)";
	NEEDS_ASYNC("R2", text)
	{
		int p[2];
		if (pipe(p))
			return 1;
		setup_cb(&cb, p[0], buf, 8, 0);
		aio_read(&cb);
		errno = 0;
		ssize_t early = aio_return(&cb);
		int e = errno;
		OURS("R2", text, early == -1 && e == EINPROGRESS, "%zd, errno %d", early, e);
		CHECK("R2b", "the request still completes normally", (write(p[1], "abcdefgh", 8) == 8) &&
		      wait_done(&cb) && aio_error(&cb) == 0, "aio_error %d", aio_error(&cb));
		ssize_t late = aio_return(&cb);
		CHECK("R2c", "and its return status can then be retrieved", late == 8, "%zd", late);
		close(p[0]);
		close(p[1]);
	}

	close(fd);
	fd = pattern_file(100, O_RDONLY);
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	ssize_t first = run(&cb, aio_read);
	errno = 0;
	ssize_t second = aio_return(&cb);
	int e2 = errno;
	CHECK("R3", "aio_return once retrieves the status", first == 100, "%zd", first);
	OURS("R3b", "a second aio_return (an error may be returned): -1 EINVAL", second == -1 && e2 == EINVAL,
	     "%zd, errno %d", second, e2);

	setup_cb(&cb, fd, buf, 10, 0);
	ssize_t again = run(&cb, aio_read);
	CHECK("R4", "the aiocb used for another request: aio_return gives that one's status",
	      again == 10, "%zd", again);

	struct aiocb never;
	memset(&never, 0, sizeof never);
	errno = 0;
	ssize_t z = aio_return(&never);
	OURS("R5", "aio_return on an aiocb never submitted (undefined): -1 EINVAL", z == -1 && errno == EINVAL,
	     "%zd, errno %d", z, errno);

	setup_cb(&cb, fd, buf, sizeof buf, 0);
	aio_read(&cb);
	wait_done(&cb);
	handler_cb = &cb;
	signal(SIGUSR1, on_usr1);
	raise(SIGUSR1);
	CHECK("R6", "aio_return from a signal handler", handler_return == 100, "%zd", handler_return);
	return end();
}
