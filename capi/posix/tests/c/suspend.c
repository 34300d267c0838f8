/* suspend.c: every normative sentence of aio_suspend.3p. */
#include "check.h"

#define SIG (SIGRTMIN + 2)

static volatile int handled;
static void on_signal(int sig)
{
	(void)sig;
	handled++;
}

static struct aiocb *handler_cb;
static volatile int handler_result = -2;
static void suspend_in_handler(int sig)
{
	(void)sig;
	const struct aiocb *list[1] = {handler_cb};
	struct timespec t = {5, 0};
	handler_result = aio_suspend(list, 1, &t); /* async-signal-safe */
}

struct kick {
	pthread_t target;
	int sig;
	int ms;
};

static void *kick_main(void *arg)
{
	struct kick *k = arg;
	sleep_ms(k->ms);
	pthread_kill(k->target, k->sig);
	return NULL;
}

/* Installs `handler` for `sig` (flags as given) and suspends on `list` until a thread sends
 * the signal after 100 ms; returns aio_suspend's result and errno. */
static int interrupted(const struct aiocb *const *list, int nent, int sig, int flags, int *err)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
	struct kick k = {pthread_self(), sig, 100};
	pthread_t t;
	pthread_create(&t, NULL, kick_main, &k);
	struct timespec ten = {10, 0};
	errno = 0;
	int r = aio_suspend(list, nent, &ten);
	*err = errno;
	pthread_join(t, NULL);
	return r;
}

int main(int argc, char **argv)
{
	begin(argc, argv);
	int fd = pattern_file(4096, O_RDONLY);
	unsigned char buf[4096];
	struct aiocb done_cb;
	setup_cb(&done_cb, fd, buf, sizeof buf, 0);
	aio_read(&done_cb);
	wait_done(&done_cb);
	struct timespec ten = {10, 0};

	const char *text = "suspends until one of the listed requests completes";
	NEEDS_ASYNC("S1", text)
	{
		int p[2];
		if (pipe(p))
			return 1;
		char small[8];
		struct aiocb cb;
		setup_cb(&cb, p[0], small, sizeof small, 0);
		aio_read(&cb);
		struct later l;
		long long t0 = now_ms();
		write_later(&l, p[1], "abc", 3, 150);
		const struct aiocb *list[1] = {&cb};
		int r = aio_suspend(list, 1, &ten);
		long long waited = now_ms() - t0;
		int e1 = aio_error(&cb);
		ssize_t n1 = aio_return(&cb);
		CHECK("S1", text, r == 0 && waited >= 100 && e1 == 0,
		      "returned %d after %lld ms, aio_error %d", r, waited, e1);
		CHECK("S6", "returns 0; aio_error and aio_return tell which completed", n1 == 3,
		      "aio_return %zd", n1);
		pthread_join(l.thread, NULL);

		/* the timeout */
		aio_read(&cb);
		struct timespec hundred = {0, 100 * 1000000};
		t0 = now_ms();
		errno = 0;
		r = aio_suspend(list, 1, &hundred);
		int e = errno;
		waited = now_ms() - t0;
		CHECK("S3", "the timeout passes with nothing complete: -1 EAGAIN",
		      r == -1 && e == EAGAIN && waited >= 90, "returned %d (errno %d) after %lld ms", r, e,
		      waited);
		struct timespec zero = {0, 0};
		errno = 0;
		r = aio_suspend(list, 1, &zero);
		e = errno;
		CHECK("S3b", "a zero timeout with nothing complete: -1 EAGAIN at once", r == -1 && e == EAGAIN,
		      "returned %d (errno %d)", r, e);

		/* one complete, one not: no wait at all */
		const struct aiocb *both[2] = {&cb, &done_cb};
		t0 = now_ms();
		r = aio_suspend(both, 2, &ten);
		waited = now_ms() - t0;
		CHECK("S2", "a request in the list already complete: returns without suspending",
		      r == 0 && waited < 1000, "returned %d after %lld ms", r, waited);

		/* null pointers are ignored */
		const struct aiocb *holes[3] = {NULL, &cb, NULL};
		errno = 0;
		r = aio_suspend(holes, 3, &hundred);
		e = errno;
		const struct aiocb *holes_done[3] = {NULL, &done_cb, NULL};
		int r2 = aio_suspend(holes_done, 3, &ten);
		CHECK("S5", "null pointers in the list are ignored",
		      r == -1 && e == EAGAIN && r2 == 0, "%d (errno %d), %d", r, e, r2);

		/* a signal handler interrupts it */
		int err;
		r = interrupted(list, 1, SIGUSR1, 0, &err);
		CHECK("S4", "a signal interrupts it: -1 EINTR", r == -1 && err == EINTR && handled == 1,
		      "returned %d (errno %d), %d handler call(s)", r, err, handled);
		r = interrupted(list, 1, SIGUSR1, SA_RESTART, &err);
		note("S4b", "... with a SA_RESTART handler", "returned %d (errno %d)", r, err);

		/* the completion of an awaited request may be what interrupts it */
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigaction(SIG, &sa, NULL);
		if (write(p[1], "-", 1) != 1)
			return 1;
		wait_done(&cb);
		aio_return(&cb);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = SIG;
		aio_read(&cb);
		write_later(&l, p[1], "xyz", 3, 100);
		handled = 0;
		errno = 0;
		r = aio_suspend(list, 1, &ten);
		e = errno;
		wait_done(&cb);
		int e7 = aio_error(&cb);
		ssize_t n7 = aio_return(&cb);
		CHECK("S7", "the awaited request's own signal: 0 or -1 EINTR, and it is complete",
		      (r == 0 || (r == -1 && e == EINTR)) && e7 == 0 && n7 == 3,
		      "returned %d (errno %d), then %d and %zd", r, e, e7, n7);
		note("S7b", "which of the two", "%s", r == 0 ? "0" : "EINTR");
		pthread_join(l.thread, NULL);
		long long until = now_ms() + 2000;
		while (!handled && now_ms() < until)
			sleep_ms(1);
		CHECK("S7c", "and its signal handler ran", handled == 1, "%d call(s)", handled);
		close(p[0]);
		close(p[1]);
	}

	/* measured against CLOCK_MONOTONIC: a timeout is not shortened or lengthened by the
	 * realtime clock (which the test cannot change); recorded: the elapsed monotonic time */
	const struct aiocb *only_done[1] = {&done_cb};
	int r = aio_suspend(only_done, 1, &ten);
	CHECK("S2b", "an already complete request alone: returns 0 at once", r == 0, "%d", r);

	/* async-signal-safe: from a handler, on a completed request */
	handler_cb = &done_cb;
	signal(SIGUSR2, suspend_in_handler);
	raise(SIGUSR2);
	CHECK("S8", "aio_suspend from a signal handler", handler_result == 0, "got %d", handler_result);
	aio_return(&done_cb);
	return end();
}
