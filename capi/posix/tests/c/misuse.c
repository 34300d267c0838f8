/* misuse.c: what a careless or hostile program does, and what it must get back: the errors the
 * aio_read/aio_fsync pages list, -1 and errno (never a crash) where POSIX leaves the result
 * undefined, a control block reused while in flight, cancel of a block that names nothing,
 * fork with requests in flight, and many threads at once. Calls that may crash the C library's
 * implementation run in a child process (in_child), which records the crash. */
#include "check.h"

/* ---- bad input, each in a child (glibc dereferences null pointers) ---- */

/* volatile, so that the compiler neither warns (<aio.h> says nonnull) nor assumes non-null */
static struct aiocb *volatile null_cb;
static const struct aiocb *const *volatile null_list;

static int null_read(void)
{
	errno = 0;
	return aio_read(null_cb) == -1 && errno == EINVAL ? 0 : 1;
}

static int null_error(void)
{
	errno = 0;
	return aio_error(null_cb) == -1 && errno == EINVAL ? 0 : 1;
}

static int null_return(void)
{
	errno = 0;
	return aio_return(null_cb) == -1 && errno == EINVAL ? 0 : 1;
}

static int null_fsync(void)
{
	errno = 0;
	return aio_fsync(O_SYNC, null_cb) == -1 && errno == EINVAL ? 0 : 1;
}

static int null_suspend(void)
{
	struct timespec t = {0, 1000000};
	errno = 0;
	int r = aio_suspend(null_list, 1, &t);
	return r == -1 && (errno == EINVAL || errno == EAGAIN) ? 0 : 1;
}

static int negative_nent(void)
{
	struct aiocb cb;
	memset(&cb, 0, sizeof cb);
	struct aiocb *list[1] = {&cb};
	errno = 0;
	return lio_listio(LIO_NOWAIT, list, -1, NULL) == -1 && errno == EINVAL ? 0 : 1;
}

static void crash_or_error(const char *id, const char *text, int (*fn)(void))
{
	int c = in_child(fn);
	OURS(id, text, c == 0, c >= 1000 ? "crashed (signal %d)" : c == 0 ? "-1 with that errno" : "something else (exit %d)",
	     c >= 1000 ? c - 1000 : c);
}

static void bad_input(int fd, unsigned char *buf)
{
	crash_or_error("M1", "aio_read(NULL): -1 EINVAL", null_read);
	crash_or_error("M1b", "aio_error(NULL): -1 EINVAL", null_error);
	crash_or_error("M1c", "aio_return(NULL): -1 EINVAL", null_return);
	crash_or_error("M1d", "aio_fsync(O_SYNC, NULL): -1 EINVAL", null_fsync);
	crash_or_error("M1e", "aio_suspend(NULL, 1, 1 ms): -1 (EINVAL or EAGAIN)", null_suspend);
	crash_or_error("M1f", "lio_listio with nent -1: -1 EINVAL", negative_nent);

	struct aiocb cb;
	int r, e, o;

	setup_cb(&cb, -1, buf, 16, 0);
	errno = 0;
	r = aio_read(&cb);
	e = errno;
	o = outcome(r, e, &cb);
	CHECK("M2", "aio_read on descriptor -1: EBADF (at once or as the error status)", o == EBADF,
	      "aio_read %d (errno %d), outcome %d", r, e, o);
	aio_return(&cb);

	setup_cb(&cb, fd, buf, 16, -1);
	errno = 0;
	r = aio_read(&cb);
	e = errno;
	o = outcome(r, e, &cb);
	CHECK("M3", "aio_read at offset -1 of a file: EINVAL", o == EINVAL,
	      "aio_read %d (errno %d), outcome %d", r, e, o);
	aio_return(&cb);

	setup_cb(&cb, fd, buf, 16, 0);
	cb.aio_reqprio = -1;
	errno = 0;
	r = aio_read(&cb);
	e = errno;
	o = outcome(r, e, &cb);
	CHECK("M4", "aio_reqprio -1: EINVAL", o == EINVAL, "aio_read %d (errno %d), outcome %d", r,
	      e, o);
	aio_return(&cb);

	setup_cb(&cb, fd, NULL, 0, 0);
	errno = 0;
	r = aio_fsync(0, &cb);
	e = errno;
	CHECK("M5", "aio_fsync with op neither O_SYNC nor O_DSYNC: -1 EINVAL", r == -1 && e == EINVAL,
	      "%d (errno %d)", r, e);

	setup_cb(&cb, fd, (void *)16, 16, 0);
	errno = 0;
	r = aio_read(&cb);
	e = errno;
	o = outcome(r, e, &cb);
	CHECK("M6", "aio_read into an unmapped buffer: EFAULT, not a crash", o == EFAULT,
	      "aio_read %d (errno %d), outcome %d", r, e, o);
	aio_return(&cb);

	setup_cb(&cb, fd, buf, 16, 0);
	cb.aio_nbytes = (size_t)-1;
	errno = 0;
	r = aio_read(&cb);
	e = errno;
	o = outcome(r, e, &cb);
	OURS("M7", "aio_nbytes SIZE_MAX: EINVAL", o == EINVAL, "aio_read %d (errno %d), outcome %d",
	     r, e, o);
	aio_return(&cb);
}

/* ---- cancel of a block that names nothing ---- */

static void cancel_unknown(int fd)
{
	struct aiocb never;
	setup_cb(&never, fd, NULL, 0, 0);
	errno = 0;
	int r = aio_cancel(fd, &never);
	OURS("M8", "aio_cancel of a block never submitted (fildes matching): AIO_ALLDONE",
	     r == AIO_ALLDONE, "%s (errno %d)", name_of_cancel(r), errno);
	struct aiocb garbage;
	memset(&garbage, 0xa5, sizeof garbage);
	garbage.aio_fildes = fd;
	errno = 0;
	r = aio_cancel(fd, &garbage);
	OURS("M8b", "aio_cancel of a block full of garbage (fildes matching): AIO_ALLDONE",
	     r == AIO_ALLDONE, "%s (errno %d)", name_of_cancel(r), errno);
	errno = 0;
	r = aio_cancel(fd, NULL);
	CHECK("M8c", "aio_cancel(fd, NULL) afterwards: AIO_ALLDONE", r == AIO_ALLDONE, "%s (errno %d)",
	      name_of_cancel(r), errno);
}

/* ---- the same block again while its request is in flight ---- */

static void reuse_in_flight(void)
{
	const char *text = "aio_read on a block whose read is in flight: -1 EINVAL, the first untouched";
	NEEDS_ASYNC("M9", text)
	{
		int p[2];
		if (pipe(p))
			exit(1);
		char small[8];
		struct aiocb cb;
		setup_cb(&cb, p[0], small, sizeof small, 0);
		aio_read(&cb);
		sleep_ms(20);
		errno = 0;
		int r = aio_read(&cb);
		int e = errno;
		int still = aio_error(&cb);
		OURS("M9", text, r == -1 && e == EINVAL && still == EINPROGRESS,
		     "aio_read %d (errno %d), then aio_error %d", r, e, still);
		/* again, with fields that would be refused on their own */
		cb.aio_reqprio = -1;
		errno = 0;
		r = aio_read(&cb);
		e = errno;
		still = aio_error(&cb);
		OURS("M9b", "... also with aio_reqprio -1: refused, the status is the first request's",
		     r == -1 && still == EINPROGRESS, "aio_read %d (errno %d), then aio_error %d", r, e,
		     still);
		cb.aio_reqprio = 0;
		/* and as an lio_listio entry with an unknown opcode */
		cb.aio_lio_opcode = 99;
		struct aiocb *list[1] = {&cb};
		errno = 0;
		r = lio_listio(LIO_NOWAIT, list, 1, NULL);
		e = errno;
		still = aio_error(&cb);
		OURS("M9d", "... also as an lio_listio entry with opcode 99: the status is the first request's",
		     still == EINPROGRESS, "lio_listio %d (errno %d), then aio_error %d", r, e, still);
		if (write(p[1], "reused!!", 8) != 8)
			exit(1);
		int done = wait_done(&cb);
		int err = aio_error(&cb);
		ssize_t n = aio_return(&cb);
		OURS("M9c", "the first request completes normally afterwards",
		      done && err == 0 && n == 8 && !memcmp(small, "reused!!", 8),
		      "done %d, aio_error %d, aio_return %zd", done, err, n);
		/* whatever a second request of glibc's might have started */
		aio_cancel(p[0], NULL);
		close(p[0]);
		close(p[1]);
	}
}

/* ---- fork with a request in flight ---- */

static int fork_p[2];
static struct aiocb fork_cb;
static char fork_buf[8];
static int fork_fd;

static int child_after_fork(void)
{
	int bad = 0;
	errno = 0;
	int e = aio_error(&fork_cb);
	if (ours && !(e == -1 && errno == EINVAL)) {
		printf("child: aio_error on the parent's in-flight block: %d (errno %d)\n", e, errno);
		bad |= 1;
	}
	int r = aio_cancel(fork_p[0], NULL);
	if (ours && r != AIO_ALLDONE) {
		printf("child: aio_cancel(fd, NULL): %s\n", name_of_cancel(r));
		bad |= 2;
	}
	unsigned char buf[4096];
	struct aiocb cb;
	setup_cb(&cb, fork_fd, buf, sizeof buf, 0);
	r = aio_read(&cb);
	if (r != 0 || !wait_done(&cb) || aio_return(&cb) != 4096 || !pattern_ok(buf, 4096, 0)) {
		printf("child: its own aio_read: %d, status %d\n", r, aio_error(&cb));
		bad |= 4;
	}
	fflush(stdout);
	return bad;
}

static void fork_in_flight(void)
{
	const char *text = "fork with a read in flight: the child's calls work, the parent's read completes";
	NEEDS_ASYNC("M10", text)
	{
		fork_fd = pattern_file(4096, O_RDONLY);
		if (pipe(fork_p))
			exit(1);
		setup_cb(&fork_cb, fork_p[0], fork_buf, sizeof fork_buf, 0);
		aio_read(&fork_cb);
		sleep_ms(20);
		int c = in_child(child_after_fork);
		CHECK("M10", "a forked child's own requests work (and, ours: the parent's block is -1 "
		      "EINVAL there, aio_cancel AIO_ALLDONE)",
		      c == 0, c >= 1000 ? "child crashed (signal %d)" : "child exit %d",
		      c >= 1000 ? c - 1000 : c);
		int still = aio_error(&fork_cb);
		if (write(fork_p[1], "parent!!", 8) != 8)
			exit(1);
		int done = wait_done(&fork_cb);
		ssize_t n = aio_return(&fork_cb);
		CHECK("M10b", "the parent's request, in flight across the fork, completes in the parent",
		      still == EINPROGRESS && done && n == 8 && !memcmp(fork_buf, "parent!!", 8),
		      "before %d, done %d, aio_return %zd", still, done, n);
		close(fork_p[0]);
		close(fork_p[1]);
		close(fork_fd);
	}
}

/* ---- threads ---- */

enum { THREADS = 8, EACH = 200 };
static int thread_fd;
static int thread_bad;

static void *reader(void *arg)
{
	long k = (long)arg;
	unsigned char buf[512];
	for (int i = 0; i < EACH; i++) {
		struct aiocb cb;
		off_t off = (off_t)(((k * EACH + i) * 512) % (1 << 20));
		setup_cb(&cb, thread_fd, buf, sizeof buf, off);
		if (aio_read(&cb) != 0) {
			int e = errno;
			if (__sync_fetch_and_add(&thread_bad, 1) < 3)
				printf("note M11x aio_read refused: errno %d\n", e);
			continue;
		}
		const struct aiocb *list[1] = {&cb};
		struct timespec t = {10, 0};
		while (aio_error(&cb) == EINPROGRESS)
			aio_suspend(list, 1, &t);
		int err = aio_error(&cb);
		ssize_t n = aio_return(&cb);
		if (n != 512 || !pattern_ok(buf, 512, (size_t)off)) {
			if (__sync_fetch_and_add(&thread_bad, 1) < 3)
				printf("note M11x a read at %lld: aio_error %d, aio_return %zd, data %s\n",
				       (long long)off, err, n, pattern_ok(buf, 512, (size_t)off) ? "right" : "wrong");
		}
	}
	return NULL;
}

struct canceller {
	int fd;
	volatile int stop;
	int results[3];
};

static void *cancel_loop(void *arg)
{
	struct canceller *c = arg;
	while (!c->stop) {
		int r = aio_cancel(c->fd, NULL);
		if (r >= 0 && r <= 2)
			c->results[r]++;
		sleep_ms(1);
	}
	return NULL;
}

static void threads(void)
{
	thread_fd = pattern_file(1 << 20, O_RDONLY);
	pthread_t t[THREADS];
	for (long k = 0; k < THREADS; k++)
		pthread_create(&t[k], NULL, reader, (void *)k);
	for (int k = 0; k < THREADS; k++)
		pthread_join(t[k], NULL);
	CHECK("M11", "8 threads x 200 reads with aio_suspend, at once: every one correct",
	      thread_bad == 0, "%d wrong", thread_bad);

	const char *text = "pipe reads cancelled by another thread while submitted: each ends once";
	NEEDS_ASYNC("M12", text)
	{
		int p[2];
		if (pipe(p))
			exit(1);
		struct canceller c = {p[0], 0, {0, 0, 0}};
		pthread_t ct;
		pthread_create(&ct, NULL, cancel_loop, &c);
		enum { N = 300 };
		static struct aiocb cbs[N];
		static char bufs[N];
		int refused = 0;
		for (int i = 0; i < N; i++) {
			setup_cb(&cbs[i], p[0], &bufs[i], 1, 0);
			if (aio_read(&cbs[i]))
				refused++;
			if (i % 10 == 0)
				sleep_ms(1);
		}
		c.stop = 1;
		pthread_join(ct, NULL);
		aio_cancel(p[0], NULL);
		static char feed[N];
		memset(feed, 'x', sizeof feed);
		if (write(p[1], feed, sizeof feed) != (ssize_t)sizeof feed)
			exit(1);
		int cancelled = 0, read_ok = 0, other = 0;
		for (int i = 0; i < N; i++) {
			if (!wait_done(&cbs[i])) {
				other++;
				continue;
			}
			int e = aio_error(&cbs[i]);
			ssize_t n = aio_return(&cbs[i]);
			if (e == ECANCELED && n == -1)
				cancelled++;
			else if (e == 0 && n == 1)
				read_ok++;
			else
				other++;
		}
		CHECK("M12", text, refused == 0 && other == 0 && cancelled + read_ok == N,
		      "%d cancelled, %d read, %d other, %d refused (aio_cancel answered %d/%d/%d "
		      "CANCELED/NOTCANCELED/ALLDONE)",
		      cancelled, read_ok, other, refused, c.results[0], c.results[1], c.results[2]);
		close(p[0]);
		close(p[1]);
	}
	close(thread_fd);
}

int main(int argc, char **argv)
{
	begin(argc, argv);
	int fd = pattern_file(4096, O_RDONLY);
	unsigned char buf[4096];
	bad_input(fd, buf);
	cancel_unknown(fd);
	reuse_in_flight();
	fork_in_flight();
	threads();
	close(fd);
	return end();
}
