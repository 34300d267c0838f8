/* listio.c: every normative sentence of lio_listio.3p. */
#include "check.h"
#include <sys/resource.h>

#define SIG (SIGRTMIN + 3)

static volatile int handled;
static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static volatile int list_calls;
static void *volatile list_value;
static void list_callback(union sigval v)
{
	list_value = v.sival_ptr;
	list_calls++;
}

static void *kick(void *arg)
{
	sleep_ms(100);
	pthread_kill(*(pthread_t *)arg, SIGUSR1);
	return NULL;
}

/* lio_listio(LIO_WAIT) interrupted by a handler, then its request completed: run as a process
 * of its own ("listio <mode> eintr"), since glibc's LIO_WAIT leaves its wait list (on the
 * returned call's stack) linked to the request, and the request's completion then writes into
 * whatever the stack holds by then. */
static int eintr_scenario(void)
{
	int p[2];
	if (pipe(p))
		return 1;
	char small[8];
	struct aiocb cb;
	setup_cb(&cb, p[0], small, sizeof small, 0);
	cb.aio_lio_opcode = LIO_READ;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	pthread_t me = pthread_self(), t;
	pthread_create(&t, NULL, kick, &me);
	struct aiocb *one[1] = {&cb};
	errno = 0;
	int r = lio_listio(LIO_WAIT, one, 1, NULL);
	int e = errno;
	pthread_join(t, NULL);
	int still = aio_error(&cb) == EINPROGRESS;
	printf("note L4a lio_listio(LIO_WAIT) interrupted => returned %d (errno %d), request pending %d\n",
	       r, e, still);
	fflush(stdout);
	if (write(p[1], "5", 1) != 1)
		return 1;
	int finished = wait_done(&cb);
	int err = aio_error(&cb);
	ssize_t n = aio_return(&cb);
	printf("note L4b then the request => %s, error %d, return %zd\n",
	       finished ? "completed" : "still in progress after 10 s", err, n);
	fflush(stdout);
	return r == -1 && e == EINTR && still && finished && err == 0 && n == 1 ? 0 : 1;
}

/* Runs this program again as "<mode> eintr"; its exit status, or 1000 + a signal. */
static int eintr_process(const char *mode)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "listio", mode, "eintr", (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
}

static int bad_list(void)
{
	struct aiocb *volatile none = NULL;
	return lio_listio(LIO_WAIT, (struct aiocb **)none, 1, NULL) == -1 && errno == EINVAL ? 0 : 1;
}

int main(int argc, char **argv)
{
	begin(argc, argv);
	if (argc > 2 && !strcmp(argv[2], "eintr"))
		return eintr_scenario();
	block_signal(SIG);
	int fd = pattern_file(16384, O_RDWR);
	unsigned char buf[4][4096];
	struct aiocb cbs[4];
	struct aiocb *list[4];
	for (int i = 0; i < 4; i++) {
		setup_cb(&cbs[i], fd, buf[i], 4096, (off_t)(3 - i) * 4096);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	int r = lio_listio(LIO_WAIT, list, 4, NULL);
	int all = 1;
	for (int i = 0; i < 4; i++)
		all &= aio_error(&cbs[i]) == 0 && aio_return(&cbs[i]) == 4096 &&
		       pattern_ok(buf[i], 4096, (size_t)(3 - i) * 4096);
	CHECK("L1", "initiates a list of requests in one call; LIO_WAIT returns 0 when all succeeded",
	      r == 0 && all, "returned %d", r);

	/* LIO_WAIT waits for all, and ignores sig */
	int p[2];
	if (pipe(p))
		return 1;
	char small[8];
	struct aiocb piped;
	setup_cb(&piped, p[0], small, sizeof small, 0);
	piped.aio_lio_opcode = LIO_READ;
	struct aiocb *two[2] = {&cbs[0], &piped};
	struct sigevent sig;
	memset(&sig, 0, sizeof sig);
	sig.sigev_notify = SIGEV_SIGNAL;
	sig.sigev_signo = SIG;
	struct later l;
	write_later(&l, p[1], "hi", 2, 150);
	long long t0 = now_ms();
	r = lio_listio(LIO_WAIT, two, 2, &sig);
	long long waited = now_ms() - t0;
	pthread_join(l.thread, NULL);
	siginfo_t info;
	int signalled = wait_signal(SIG, &info, 200);
	CHECK("L2", "LIO_WAIT returns once all the requests have completed",
	      r == 0 && waited >= 100 && aio_error(&piped) == 0 && aio_error(&cbs[0]) == 0,
	      "returned %d after %lld ms", r, waited);
	CHECK("L2b", "LIO_WAIT ignores sig", !signalled, "a signal came");
	aio_return(&piped);
	aio_return(&cbs[0]);

	/* LIO_NOWAIT returns at once; sig when all have completed */
	const char *text = "LIO_NOWAIT returns at once, and sig is sent when all have completed";
	NEEDS_ASYNC("L3", text)
	{
		int q[2];
		if (pipe(q))
			return 1;
		char qbuf[8];
		struct aiocb second;
		setup_cb(&second, q[0], qbuf, sizeof qbuf, 0);
		second.aio_lio_opcode = LIO_READ;
		struct aiocb *pair[2] = {&piped, &second};
		int marker;
		sig.sigev_value.sival_ptr = &marker;
		t0 = now_ms();
		r = lio_listio(LIO_NOWAIT, pair, 2, &sig);
		waited = now_ms() - t0;
		int pending = aio_error(&piped) == EINPROGRESS && aio_error(&second) == EINPROGRESS;
		if (write(p[1], "1", 1) != 1)
			return 1;
		wait_done(&piped);
		int early = wait_signal(SIG, &info, 100);
		if (write(q[1], "2", 1) != 1)
			return 1;
		int late = wait_signal(SIG, &info, 5000);
		CHECK("L3", text, r == 0 && waited < 1000 && pending && !early && late,
		      "returned %d after %lld ms, pending %d, signal after the first %d, after both %d",
		      r, waited, pending, early, late);
		CHECK("L3b", "the list's signal: si_code SI_ASYNCIO, si_value from sig",
		      late && info.si_code == SI_ASYNCIO && info.si_value.sival_ptr == &marker,
		      "si_code %d", info.si_code);
		aio_return(&piped);
		wait_done(&second);
		aio_return(&second);

		/* the same with SIGEV_THREAD */
		struct sigevent th;
		memset(&th, 0, sizeof th);
		th.sigev_notify = SIGEV_THREAD;
		th.sigev_notify_function = list_callback;
		th.sigev_value.sival_ptr = &marker;
		r = lio_listio(LIO_NOWAIT, pair, 2, &th);
		sleep_ms(50);
		int before = list_calls;
		if (write(p[1], "3", 1) != 1 || write(q[1], "4", 1) != 1)
			return 1;
		long long until = now_ms() + 5000;
		while (!list_calls && now_ms() < until)
			sleep_ms(1);
		sleep_ms(50);
		CHECK("L3c", "... or SIGEV_THREAD: called once, when all have completed",
		      r == 0 && before == 0 && list_calls == 1 && list_value == &marker,
		      "returned %d, %d call(s) before, %d after", r, before, list_calls);
		aio_return(&piped);
		aio_return(&second);
		close(q[0]);
		close(q[1]);

		/* EINTR: in a process of its own, which a crash does not take down */
		int c = eintr_process(argv[1]);
		if (c == 127)
			skip("L4", "a signal during LIO_WAIT", "this program cannot run itself again here");
		else
			OURS("L4", "a signal during LIO_WAIT: -1 EINTR, the requests not cancelled; they complete",
		     c == 0, c >= 1000 ? "the process crashed afterwards (signal %d)" : "exit %d",
		     c >= 1000 ? c - 1000 : c);
	}

	/* null entries, LIO_NOP */
	struct aiocb nop;
	memset(&nop, 0x5a, sizeof nop);
	nop.aio_lio_opcode = LIO_NOP;
	struct aiocb nop_before = nop;
	setup_cb(&cbs[1], fd, buf[1], 4096, 4096);
	cbs[1].aio_lio_opcode = LIO_READ;
	struct aiocb *holes[4] = {NULL, &nop, &cbs[1], NULL};
	r = lio_listio(LIO_WAIT, holes, 4, NULL);
	CHECK("L5", "null entries are ignored", r == 0 && aio_return(&cbs[1]) == 4096, "returned %d", r);
	CHECK("L6", "an LIO_NOP entry is ignored (not touched)", !memcmp(&nop, &nop_before, sizeof nop),
	      "the aiocb changed");

	/* LIO_WRITE as aio_write, LIO_READ as aio_read */
	unsigned char out[100], in[100];
	memset(out, 'q', sizeof out);
	struct aiocb wcb, rcb;
	setup_cb(&wcb, fd, out, sizeof out, 20000);
	wcb.aio_lio_opcode = LIO_WRITE;
	struct aiocb *wl[1] = {&wcb};
	r = lio_listio(LIO_WAIT, wl, 1, NULL);
	setup_cb(&rcb, fd, in, sizeof in, 20000);
	rcb.aio_lio_opcode = LIO_READ;
	struct aiocb *rl[1] = {&rcb};
	int r2 = lio_listio(LIO_WAIT, rl, 1, NULL);
	CHECK("L7", "LIO_WRITE writes as aio_write, LIO_READ reads as aio_read",
	      r == 0 && r2 == 0 && aio_return(&wcb) == 100 && aio_return(&rcb) == 100 &&
		      !memcmp(in, out, 100),
	      "returned %d, %d", r, r2);

	/* a failing entry */
	int wronly = pattern_file(4096, O_WRONLY);
	struct aiocb bad;
	setup_cb(&bad, wronly, buf[2], 4096, 0);
	bad.aio_lio_opcode = LIO_READ;
	setup_cb(&cbs[3], fd, buf[3], 4096, 0);
	cbs[3].aio_lio_opcode = LIO_READ;
	struct aiocb *mixed[2] = {&bad, &cbs[3]};
	errno = 0;
	r = lio_listio(LIO_WAIT, mixed, 2, NULL);
	int e = errno;
	int eb = aio_error(&bad), eg = aio_error(&cbs[3]);
	ssize_t nb = aio_return(&bad), ng = aio_return(&cbs[3]);
	CHECK("L8", "LIO_WAIT with a failed request: -1 EIO", r == -1 && e == EIO, "returned %d (errno %d)",
	      r, e);
	CHECK("L9", "each request's status tells which failed, as aio_read's would (EBADF)",
	      eb == EBADF && nb == -1, "error %d, return %zd", eb, nb);
	CHECK("L10", "the failure of one does not prevent the others", eg == 0 && ng == 4096,
	      "error %d, return %zd", eg, ng);
	errno = 0;
	r = lio_listio(LIO_NOWAIT, mixed, 2, NULL);
	e = errno;
	wait_done(&bad);
	wait_done(&cbs[3]);
	eb = aio_error(&bad);
	CHECK("L11", "LIO_NOWAIT: 0 once queued (or -1 EIO if a request failed at once)",
	      (r == 0 || (r == -1 && e == EIO)) && eb == EBADF, "returned %d (errno %d), error %d", r, e, eb);
	aio_return(&bad);
	aio_return(&cbs[3]);

	/* EINVAL: nothing initiated */
	int target = pattern_file(0, O_RDWR);
	struct aiocb w2;
	setup_cb(&w2, target, out, sizeof out, 0);
	w2.aio_lio_opcode = LIO_WRITE;
	struct aiocb w2_before = w2;
	struct aiocb *wl2[1] = {&w2};
	errno = 0;
	r = lio_listio(42, wl2, 1, NULL);
	e = errno;
	sleep_ms(50);
	struct stat st;
	fstat(target, &st);
	CHECK("L12", "EINVAL for a bad mode, and no request initiated",
	      r == -1 && e == EINVAL && st.st_size == 0 && !memcmp(&w2, &w2_before, sizeof w2),
	      "returned %d (errno %d), file size %lld", r, e, (long long)st.st_size);
	long max = sysconf(_SC_AIO_LISTIO_MAX);
	note("L13", "AIO_LISTIO_MAX (sysconf), beyond which nent is EINVAL", "%ld", max);

	/* EAGAIN: more requests than the implementation can hold. Reads on an empty pipe stay in
	 * progress (a file read completes inside the submission and frees its slot at once). */
	const char *many_text = "beyond the requests it can hold (1024 in progress): -1 EAGAIN, and aio_error says which";
	NEEDS_ASYNC("L14", many_text)
	{
		enum { MANY = 1100 };
		static struct aiocb many[MANY];
		static struct aiocb *many_list[MANY];
		static unsigned char one_byte[MANY];
		int m[2];
		if (pipe(m))
			return 1;
		/* Each stream request in progress holds a descriptor of libposixaio's (its private
		 * duplicate): room for them, where the hard limit allows, so that the count below is
		 * the implementation's own limit and not RLIMIT_NOFILE's. */
		struct rlimit nofile;
		if (!getrlimit(RLIMIT_NOFILE, &nofile) && nofile.rlim_cur < 4096 && nofile.rlim_max > nofile.rlim_cur) {
			nofile.rlim_cur = nofile.rlim_max < 4096 ? nofile.rlim_max : 4096;
			setrlimit(RLIMIT_NOFILE, &nofile);
		}
		for (int i = 0; i < MANY; i++) {
			setup_cb(&many[i], m[0], &one_byte[i], 1, 0);
			many[i].aio_lio_opcode = LIO_READ;
			many_list[i] = &many[i];
		}
		errno = 0;
		r = lio_listio(LIO_NOWAIT, many_list, MANY, NULL);
		e = errno;
		int refused = 0, waiting = 0;
		for (int i = 0; i < MANY; i++) {
			int s = aio_error(&many[i]);
			refused += s == EAGAIN;
			waiting += s == EINPROGRESS;
		}
		/* the cleanup: cancel what can be, feed the rest one byte each */
		aio_cancel(m[0], NULL);
		static char feed[MANY];
		memset(feed, 'f', sizeof feed);
		if (write(m[1], feed, sizeof feed) != (ssize_t)sizeof feed)
			return 1;
		int settled = 0;
		for (int i = 0; i < MANY; i++) {
			settled += wait_done(&many[i]);
			aio_return(&many[i]);
		}
		OURS("L14", many_text,
		     r == -1 && e == EAGAIN && refused == MANY - 1024 && waiting == 1024 && settled == MANY,
		     "returned %d (errno %d), %d refused with EAGAIN, %d in progress, %d settled", r, e,
		     refused, waiting, settled);
		close(m[0]);
		close(m[1]);
	}

	/* a null list */
	int c = in_child(bad_list);
	OURS("L15", "a null list with nent 1: -1 EINVAL", c == 0,
	     c >= 1000 ? "the call crashed (signal %d)" : "exit %d", c >= 1000 ? c - 1000 : c);
	return end();
}
