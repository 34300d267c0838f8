/* review.c: the adversarial review's reproducers (formerly tests/atk/), as checks: a program
 * that closes or reuses the library's eventfd, a SIGEV_THREAD function that exits or blocks,
 * dup2 over a descriptor with a read waiting, the service thread's count, and lio_listio
 * refused for want of a list slot. */
#include "check.h"
#include <dirent.h>
#include <semaphore.h>
#include <sys/eventfd.h>

/* The eventfds open in this process (the program makes none before it asks): up to `max`. */
static int eventfds(int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) && n < max) {
		char path[300], target[64];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		if (!strcmp(target, "anon_inode:[eventfd]"))
			fds[n++] = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

static void on_rtmin(int s)
{
	(void)s;
}

/* SIGRTMIN announces these requests: blocked here, and caught (ignored) wherever a C library's
 * own threads take it. */
static void block_rtmin(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_rtmin;
	sigaction(SIGRTMIN, &sa, 0);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &s, 0);
}

/* Review defect 2: the program's own eventfds at the numbers the library's had are never read
 * or written by the library. */
static void eventfd_taken(void)
{
	static char buf[64];
	int fds[8], mine[8];
	int file = pattern_file(64, O_RDONLY);
	struct aiocb cb;
	setup_cb(&cb, file, buf, 64, 0);
	aio_read(&cb);
	wait_done(&cb);
	aio_return(&cb);
	int n = eventfds(fds, 8);
	if (n == 0) {
		skip("efd-foreign", "the program's eventfd at the library's old number is left alone",
		     "no eventfd of the library's (the C library's AIO, or synchronous mode)");
		close(file);
		return;
	}
	for (int k = 0; k < n; k++) {
		close(fds[k]);
		int e = eventfd(7, EFD_NONBLOCK);
		mine[k] = e == fds[k] ? e : dup2(e, fds[k]);
		if (e != fds[k])
			close(e);
	}
	int p[2];
	if (pipe(p))
		exit(1);
	/* A wait with a timeout arms the wake-up POLL (emptying "its" eventfd), and a cancel
	 * wakes the reaper (writing it). */
	struct aiocb rd;
	setup_cb(&rd, p[0], buf, 4, 0);
	aio_read(&rd);
	const struct aiocb *list[1] = {&rd};
	struct timespec fifth = {0, 200000000};
	int r = aio_suspend(list, 1, &fifth);
	int er = errno;
	int c = aio_cancel(p[0], &rd);
	int ok = 1;
	uint64_t v = 0, bad = 0;
	for (int k = 0; k < n; k++) {
		v = 0;
		if (read(mine[k], &v, 8) != 8 || v != 7) {
			ok = 0;
			bad = v;
		}
	}
	OURS("efd-foreign", "the program's eventfd at the library's old number is left alone",
	     ok && r == -1 && er == EAGAIN && c == AIO_CANCELED,
	     "counter %llu (7 expected); aio_suspend %d errno %d; aio_cancel %s",
	     (unsigned long long)(ok ? 7 : bad), r, er, name_of_cancel(c));
	for (int k = 0; k < n; k++)
		close(mine[k]);
	close(p[0]);
	close(p[1]);
	close(file);
}

/* Review defect 1: once the program closed the library's eventfd, aio_cancel still returns at
 * once (the reaper blocked in the kernel is woken), and the library goes on working. */
static void eventfd_closed(void)
{
	NEEDS_ASYNC("efd-closed", "aio_cancel returns at once after the program closed the library's eventfd") {
		static char buf[16];
		int p[2];
		if (pipe(p))
			exit(1);
		block_rtmin();
		struct aiocb cb;
		setup_cb(&cb, p[0], buf, sizeof buf, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL; /* the service thread blocks in the kernel */
		cb.aio_sigevent.sigev_signo = SIGRTMIN;
		aio_read(&cb);
		sleep_ms(100);
		int fds[8];
		int n = eventfds(fds, 8);
		if (n == 0) {
			skip("efd-closed", "aio_cancel returns at once after the program closed the library's eventfd",
			     "no eventfd of the library's");
			aio_cancel(p[0], &cb);
			wait_done(&cb);
		} else {
			for (int k = 0; k < n; k++)
				close(fds[k]);
			alarm(20);
			long long t0 = now_ms();
			int r = aio_cancel(p[0], &cb);
			long long took = now_ms() - t0;
			struct aiocb two;
			setup_cb(&two, p[0], buf, 4, 0);
			aio_read(&two);
			if (write(p[1], "abcd", 4) != 4)
				exit(1);
			const struct aiocb *list[1] = {&two};
			struct timespec sec = {2, 0};
			int s = aio_suspend(list, 1, &sec);
			ssize_t got = aio_return(&two);
			alarm(60);
			OURS("efd-closed", "aio_cancel returns at once after the program closed the library's eventfd",
			     r == AIO_CANCELED && took < 1000 && s == 0 && got == 4,
			     "aio_cancel %s after %lld ms; then a read: aio_suspend %d, %zd bytes",
			     name_of_cancel(r), took, s, got);
		}
		close(p[0]);
		close(p[1]);
	}
}

/* Review defect 3: a SIGEV_THREAD function may call pthread_exit (it runs as if it were a new
 * thread's start function), and one that blocks does not hold up the next. */
static sem_t called, second;

static void exiting(union sigval v)
{
	sem_post(&called);
	if (v.sival_int == 1)
		pthread_exit(0);
}

static volatile int first_saw_second = -1;

static void blocking(union sigval v)
{
	if (v.sival_int == 10) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_sec += 5;
		first_saw_second = sem_timedwait(&second, &t) == 0;
		sem_post(&called);
	} else {
		sem_post(&second);
	}
}

static int timed_wait(sem_t *s, int secs)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += secs;
	while (sem_timedwait(s, &t))
		if (errno != EINTR)
			return -1;
	return 0;
}

static void thread_notify(int fd, struct aiocb *cb, char *buf, void (*fn)(union sigval), int value)
{
	setup_cb(cb, fd, buf, 16, 0);
	cb->aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb->aio_sigevent.sigev_notify_function = fn;
	cb->aio_sigevent.sigev_value.sival_int = value;
	aio_read(cb);
}

static void callbacks(void)
{
	static char b1[16], b2[16], b3[16], b4[16];
	static struct aiocb c1, c2, c3, c4;
	sem_init(&called, 0, 0);
	sem_init(&second, 0, 0);
	int file = pattern_file(64, O_RDONLY);
	thread_notify(file, &c1, b1, exiting, 1);
	int first = timed_wait(&called, 5);
	sleep_ms(50);
	thread_notify(file, &c2, b2, exiting, 2);
	int after = timed_wait(&called, 5);
	CHECK("cb-exit", "a SIGEV_THREAD function that calls pthread_exit does not end later notifications",
	      first == 0 && after == 0, "first %s, the next %s", first ? "not called" : "called",
	      after ? "never called" : "called");
	thread_notify(file, &c3, b3, blocking, 10);
	sleep_ms(50);
	thread_notify(file, &c4, b4, blocking, 11);
	int done = timed_wait(&called, 8);
	CHECK("cb-block", "a SIGEV_THREAD function that blocks does not hold up the next one",
	      done == 0 && first_saw_second == 1, "the blocked function %s the next one run",
	      first_saw_second == 1 ? "saw" : "never saw");
	close(file);
}

/* Review defect 4: a request is made on a file, not a number: dup2 over the descriptor while a
 * pipe read waits leaves the read on the first pipe. */
static void dup2_over(void)
{
	NEEDS_ASYNC("dup2-over", "dup2 over a descriptor with a read waiting: the read stays on its file") {
		static char buf[8];
		int a[2], b[2];
		if (pipe(a) || pipe(b))
			exit(1);
		struct aiocb cb;
		setup_cb(&cb, a[0], buf, 4, 0);
		aio_read(&cb);
		sleep_ms(100);
		int keep = dup(a[0]);
		dup2(b[0], a[0]);
		if (write(b[1], "2222", 4) != 4)
			exit(1);
		sleep_ms(100);
		int before = aio_error(&cb);
		if (write(a[1], "1111", 4) != 4)
			exit(1);
		int done = wait_done(&cb);
		ssize_t r = aio_return(&cb);
		char left[8] = {0};
		fcntl(b[0], F_SETFL, O_NONBLOCK);
		ssize_t l = read(b[0], left, 8);
		CHECK("dup2-over", "dup2 over a descriptor with a read waiting: the read stays on its file",
		      before == EINPROGRESS && done && r == 4 && !memcmp(buf, "1111", 4) && l == 4,
		      "before the first pipe's data: %s; read %zd bytes '%.4s'; the new file kept %zd",
		      before == EINPROGRESS ? "in progress" : strerror(before), r, buf, l);
		close(keep);
		close(a[0]);
		close(a[1]);
		close(b[0]);
		close(b[1]);
	}
}

/* Review (fsync barrier): an aio_fsync covers the requests queued before it on the file, through
 * any descriptor. A 64 MiB O_DIRECT write is in flight through one descriptor; an fsync through a
 * second open of the file is cancelled right after it is queued. If the write is still in
 * progress once the cancel has returned, the fsync was held (not yet in the kernel) when it was
 * cancelled: AIO_CANCELED. Up to five tries for that window. */
static void fsync_file(void)
{
	const char *id = "fsync-file";
	const char *text = "aio_fsync through another open of a file waits for its earlier O_DIRECT write";
	NEEDS_ASYNC(id, text) {
		enum { BIG = 64 << 20 };
		int fd1 = pattern_file(BIG, O_RDWR | O_DIRECT), fd2 = -1;
		char *buf = aligned_alloc(4096, BIG);
		if (!buf)
			exit(1);
		memset(buf, 0, BIG);
		if (fd1 >= 0) {
			/* A second open of the same file (its own open file description). */
			char self[64];
			snprintf(self, sizeof self, "/proc/self/fd/%d", fd1);
			fd2 = open(self, O_RDWR);
			if (fd2 < 0)
				exit(1);
		}
		if (fd1 < 0) {
			skip(id, text, "O_DIRECT refused by /tmp's file system");
		} else {
			int done = 0;
			for (int round = 0; round < 5 && !done; round++) {
				struct aiocb wr, fs;
				setup_cb(&wr, fd1, buf, BIG, 0);
				setup_cb(&fs, fd2, NULL, 0, 0);
				int a = aio_write(&wr), b = aio_fsync(O_SYNC, &fs);
				int c = aio_cancel(fd2, &fs);
				int still = aio_error(&wr) == EINPROGRESS;
				wait_done(&wr);
				wait_done(&fs);
				if (still) {
					OURS(id, text, a == 0 && b == 0 && c == AIO_CANCELED,
					     "aio_write %d, aio_fsync %d; aio_cancel of the fsync with the write in flight: %s",
					     a, b, name_of_cancel(c));
					done = 1;
				}
			}
			if (!done)
				skip(id, text, "the write completed before the cancel, five times");
			close(fd1);
			close(fd2);
		}
		free(buf);
	}
}

/* ... and only files are compared so: a pipe's two ends share an inode, but an fsync through a
 * dup() of a pipe fails at once (EINVAL), whatever waits on the pipe. */
static void fsync_dup_pipe(void)
{
	const char *id = "fsync-dup", *text = "aio_fsync through a dup() of a pipe fails at once, even with a write waiting";
	NEEDS_ASYNC(id, text) {
		static char data[100];
		int p[2];
		if (pipe(p))
			exit(1);
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		static char chunk[65536];
		while (write(p[1], chunk, sizeof chunk) > 0)
			;
		int w2 = dup(p[1]);
		struct aiocb wr, fs;
		setup_cb(&wr, p[1], data, sizeof data, 0);
		setup_cb(&fs, w2, NULL, 0, 0);
		int a = aio_write(&wr), b = aio_fsync(O_SYNC, &fs);
		int got = wait_done(&fs) ? aio_error(&fs) : EINPROGRESS;
		aio_cancel(p[1], &wr);
		wait_done(&wr);
		CHECK(id, text, a == 0 && b == 0 && got == EINVAL,
		      "aio_write %d, aio_fsync %d; the fsync while the write waited: %s", a, b,
		      got == EINPROGRESS ? "in progress" : strerror(got));
		close(w2);
		close(p[0]);
		close(p[1]);
	}
}

/* Review defect 5: at most one service thread, however the first call goes (in a fresh
 * process whose first call asks for the service thread). */
static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

enum { PROCESSES = 20 };

/* A fresh process (exec'd): three SIGEV_SIGNAL reads, the first its first call into the
 * library; exits with the most threads it had. */
static int service_child(void)
{
	static char buf[16];
	block_rtmin();
	int file = pattern_file(64, O_RDONLY);
	int peak = 0;
	for (int i = 0; i < 3; i++) {
		struct aiocb cb;
		setup_cb(&cb, file, buf, 16, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = SIGRTMIN;
		aio_read(&cb);
		wait_done(&cb);
		aio_return(&cb);
		sleep_ms(5);
		int t = threads();
		peak = t > peak ? t : peak;
	}
	return peak > 100 ? 100 : peak;
}

static void one_service(const char *mode)
{
	int bad = 0, most = 0;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		skip("one-service", "at most one service thread (20 fresh processes)", "no /proc/self/exe");
		return;
	}
	self[n] = 0;
	for (int k = 0; k < PROCESSES; k++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			execl(self, self, mode, "service-child", (char *)0);
			_exit(98);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		int t = WIFEXITED(st) ? WEXITSTATUS(st) : 99;
		most = t > most ? t : most;
		if (t > 2)
			bad++;
	}
	OURS("one-service", "at most one service thread (20 fresh processes)", bad == 0,
	     "%d of %d had more than one; at most %d threads", bad, PROCESSES, most);
}

/* Review defect 6: lio_listio refused for want of resources says so in each entry. */
static void lio_again(void)
{
	NEEDS_ASYNC("lio-again", "lio_listio refused with EAGAIN: each entry's aio_error says EAGAIN") {
		enum { MAX = 300 };
		static struct aiocb cbs[MAX];
		static char bufs[MAX][1];
		int p[2];
		if (pipe(p))
			exit(1);
		block_rtmin();
		struct sigevent se;
		memset(&se, 0, sizeof se);
		se.sigev_notify = SIGEV_SIGNAL;
		se.sigev_signo = SIGRTMIN;
		int k, refused = -1, err = 0;
		for (k = 0; k < MAX; k++) {
			setup_cb(&cbs[k], p[0], bufs[k], 1, 0);
			cbs[k].aio_lio_opcode = LIO_READ;
			struct aiocb *one[1] = {&cbs[k]};
			errno = 0;
			if (lio_listio(LIO_NOWAIT, one, 1, &se)) {
				refused = k;
				err = errno;
				break;
			}
		}
		if (refused < 0) {
			note("lio-again", "lio_listio refused with EAGAIN: each entry's aio_error says EAGAIN",
			     "%d lists of one pipe read accepted, none refused", MAX);
		} else {
			int ae = aio_error(&cbs[refused]);
			ssize_t ar = aio_return(&cbs[refused]);
			OURS("lio-again", "lio_listio refused with EAGAIN: each entry's aio_error says EAGAIN",
			     err == EAGAIN && ae == EAGAIN && ar == -1,
			     "list %d refused, errno %d; entry aio_error %d aio_return %zd", refused, err, ae, ar);
		}
		aio_cancel(p[0], NULL);
		for (int j = 0; j < k; j++)
			wait_done(&cbs[j]);
		close(p[0]);
		close(p[1]);
	}
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[2], "service-child"))
		return service_child();
	begin(argc, argv);
	eventfd_taken();
	eventfd_closed();
	callbacks();
	dup2_over();
	fsync_file();
	fsync_dup_pipe();
	lio_again();
	/* Last: each child's kernel AIO context counts toward fs.aio-max-nr until the kernel has
	 * torn it down, a moment after the child exits; io_setup meanwhile may say EAGAIN. */
	one_service(argc > 1 ? argv[1] : "glibc");
	return end();
}
