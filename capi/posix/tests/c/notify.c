/* notify.c: struct sigevent as the aio_* pages use it (SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD,
 * Linux's SIGEV_THREAD_ID), and issue 16's rule for threads: at most one service thread per
 * process, started only when a notification needs one. */
#include "check.h"

#define SIG (SIGRTMIN + 4)

static volatile int calls;
static void *volatile value;
static volatile pid_t caller_tid;

static void callback(union sigval v)
{
	value = v.sival_ptr;
	caller_tid = (pid_t)syscall(SYS_gettid);
	calls++;
}

static int wait_calls(int n, int ms)
{
	long long until = now_ms() + ms;
	while (calls < n && now_ms() < until)
		sleep_ms(1);
	return calls >= n;
}

/* SIGEV_THREAD_ID: a thread that waits for SIG and says what came. */
struct target {
	pthread_t thread;
	volatile pid_t tid;
	int got;
	siginfo_t info;
};

static void *target_main(void *arg)
{
	struct target *t = arg;
	t->tid = (pid_t)syscall(SYS_gettid);
	t->got = wait_signal(SIG, &t->info, 5000);
	return NULL;
}

int main(int argc, char **argv)
{
	begin(argc, argv);
	block_signal(SIG);
	int fd = pattern_file(8192, O_RDONLY);
	unsigned char buf[4096];
	struct aiocb cb;

	/* SIGEV_NONE only: no thread of the library's */
	int threads0 = thread_count();
	for (int i = 0; i < 20; i++) {
		setup_cb(&cb, fd, buf, sizeof buf, 0);
		aio_read(&cb);
		wait_done(&cb);
		aio_return(&cb);
	}
	int threads1 = thread_count();
	OURS("N1", "SIGEV_NONE requests start no thread", threads1 == threads0,
	     "%d thread(s) before, %d after", threads0, threads1);

	/* SIGEV_SIGNAL */
	setup_cb(&cb, fd, buf, sizeof buf, 4096);
	cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	cb.aio_sigevent.sigev_signo = SIG;
	cb.aio_sigevent.sigev_value.sival_ptr = &cb;
	int r = aio_read(&cb);
	siginfo_t info;
	memset(&info, 0, sizeof info);
	int got = wait_signal(SIG, &info, 5000);
	CHECK("N2", "SIGEV_SIGNAL: sigev_signo is sent when the request completes",
	      r == 0 && got && info.si_signo == SIG, "aio_read %d, signal %s", r,
	      got ? "came" : "missing");
	CHECK("N2b", "... with si_code SI_ASYNCIO and si_value the request's sigev_value",
	      got && info.si_code == SI_ASYNCIO && info.si_value.sival_ptr == &cb,
	      "si_code %d, si_value %p", info.si_code, info.si_value.sival_ptr);
	CHECK("N2c", "... and the request is complete when it comes",
	      aio_error(&cb) == 0 && aio_return(&cb) == 4096 && pattern_ok(buf, 4096, 4096),
	      "aio_error %d", aio_error(&cb));
	OURS("N2d", "... si_pid is the process's", got && info.si_pid == getpid(), "si_pid %d, pid %d",
	     (int)info.si_pid, (int)getpid());

	/* a stream request moves on while the program only waits for its signal */
	const char *text = "a pipe read completes while the program only waits in sigtimedwait";
	NEEDS_ASYNC("N3", text)
	{
		int p[2];
		if (pipe(p))
			return 1;
		char small[8];
		setup_cb(&cb, p[0], small, sizeof small, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = SIG;
		cb.aio_sigevent.sigev_value.sival_int = 77;
		aio_read(&cb);
		struct later l;
		write_later(&l, p[1], "stream", 6, 100);
		got = wait_signal(SIG, &info, 5000);
		pthread_join(l.thread, NULL);
		CHECK("N3", text, got && info.si_value.sival_int == 77 && aio_error(&cb) == 0,
		      "signal %s, aio_error %d", got ? "came" : "missing", aio_error(&cb));
		ssize_t n = aio_return(&cb);
		CHECK("N3b", "... with the data", n == 6 && !memcmp(small, "stream", 6), "%zd", n);
		close(p[0]);
		close(p[1]);
	}

	/* SIGEV_THREAD */
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = callback;
	cb.aio_sigevent.sigev_value.sival_ptr = buf;
	r = aio_read(&cb);
	int called = wait_calls(1, 5000);
	CHECK("N4", "SIGEV_THREAD: sigev_notify_function is called with sigev_value",
	      r == 0 && called && value == buf, "aio_read %d, %d call(s)", r, calls);
	CHECK("N4b", "... on a thread other than the caller's",
	      called && caller_tid != (pid_t)syscall(SYS_gettid), "tid %d", (int)caller_tid);
	sleep_ms(20);
	CHECK("N4c", "... once", calls == 1, "%d call(s)", calls);
	aio_return(&cb);

	/* many SIGEV_THREAD requests: one service thread */
	enum { N = 64 };
	static struct aiocb cbs[N];
	static unsigned char bufs[N][64];
	calls = 0;
	for (int i = 0; i < N; i++) {
		setup_cb(&cbs[i], fd, bufs[i], 64, i * 64);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
		cbs[i].aio_sigevent.sigev_notify_function = callback;
		aio_read(&cbs[i]);
	}
	called = wait_calls(N, 10000);
	/* Each SIGEV_THREAD function runs on its own thread (as glibc's do), which ends with it:
	 * counted once they have ended (up to 1 s). */
	int threads2 = thread_count();
	for (int t = 0; t < 100 && threads2 > threads0 + 1; t++) {
		sleep_ms(10);
		threads2 = thread_count();
	}
	for (int i = 0; i < N; i++) {
		wait_done(&cbs[i]);
		aio_return(&cbs[i]);
	}
	CHECK("N5", "every SIGEV_THREAD request is notified (64 at once)", called && calls == N,
	      "%d call(s)", calls);
	OURS("N5b", "at most one service thread per process", threads2 <= threads0 + 1,
	     "%d thread(s) before any notification, %d after 64 SIGEV_THREAD requests (their own threads ended)", threads0,
	     threads2);

	/* SIGEV_THREAD_ID (Linux): to one thread */
	struct target t;
	memset(&t, 0, sizeof t);
	pthread_create(&t.thread, NULL, target_main, &t);
	while (!t.tid)
		sleep_ms(1);
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
	cb.aio_sigevent.sigev_signo = SIG;
	cb.aio_sigevent.sigev_notify_thread_id = t.tid;
	cb.aio_sigevent.sigev_value.sival_int = 5;
	errno = 0;
	r = aio_read(&cb);
	int e = errno;
	pthread_join(t.thread, NULL);
	wait_done(&cb);
	OURS("N6", "SIGEV_THREAD_ID: the signal goes to the named thread",
	     r == 0 && t.got && t.info.si_value.sival_int == 5 && t.info.si_code == SI_ASYNCIO,
	     "aio_read %d (errno %d), the thread %s it", r, e, t.got ? "got" : "did not get");
	aio_return(&cb);
	/* whatever the thread did not take is still pending for the process */
	wait_signal(SIG, &info, 10);

	/* bad sigevents */
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = 12345;
	errno = 0;
	r = aio_read(&cb);
	e = errno;
	int o = outcome(r, e, &cb);
	OURS("N7", "an unknown sigev_notify: EINVAL", o == EINVAL, "aio_read %d (errno %d), outcome %d",
	     r, e, o);
	aio_return(&cb);
	setup_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	cb.aio_sigevent.sigev_signo = 4096;
	errno = 0;
	r = aio_read(&cb);
	e = errno;
	o = outcome(r, e, &cb);
	OURS("N7b", "SIGEV_SIGNAL with signal 4096: EINVAL", o == EINVAL,
	     "aio_read %d (errno %d), outcome %d", r, e, o);
	aio_return(&cb);
	close(fd);
	return end();
}
