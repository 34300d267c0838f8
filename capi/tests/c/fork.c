/* fork.c: a child never takes its parent's completions, however it was made.
 *
 * The ring is shared memory that a child inherits; the context is not (the kernel answers the
 * child EINVAL). For each way of making a child (fork, raw fork, raw clone, _Fork, clone3 —
 * the last four run no pthread_atfork handlers — and fork after the program registered an
 * atfork child handler of its own before the first io_setup), the parent leaves four
 * completions in the ring, the child calls io_getevents on the parent's context, and then the
 * parent must get all four. Found by the adversarial review: the library's first fork guard was
 * a pthread_atfork handler, which all but plain fork bypass. */
#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/sched.h>

pid_t _Fork(void);

static io_context_t ctx;
static int early_result = 12345; /* what the program's own atfork child handler saw */

static void early_child_handler(void)
{
	struct io_event ev[8];
	struct timespec zero = {0, 0};
	if (ctx)
		early_result = io_getevents(ctx, 0, 8, ev, &zero);
}

/* clone(2) without a new stack: s390 takes the stack first and the flags second. */
static pid_t raw_clone(unsigned long flags)
{
#if defined(__s390__)
	return (pid_t)syscall(SYS_clone, 0, flags, 0, 0, 0);
#else
	return (pid_t)syscall(SYS_clone, flags, 0, 0, 0, 0);
#endif
}

static pid_t make_child(const char *how)
{
	if (!strcmp(how, "fork") || !strcmp(how, "atfork_first"))
		return fork();
	if (!strcmp(how, "syscall_fork")) {
#ifdef SYS_fork
		return (pid_t)syscall(SYS_fork);
#else
		return raw_clone(SIGCHLD);
#endif
	}
	if (!strcmp(how, "clone"))
		return raw_clone(SIGCHLD);
	if (!strcmp(how, "_Fork"))
		return _Fork();
#ifdef SYS_clone3
	if (!strcmp(how, "clone3")) {
		struct clone_args args;
		memset(&args, 0, sizeof args);
		args.exit_signal = SIGCHLD;
		return (pid_t)syscall(SYS_clone3, &args, sizeof args);
	}
#endif
	return -2;
}

static void one_way(const char *how, int fd)
{
	char name[64];
	snprintf(name, sizeof name, "fork (%s): the parent keeps its completions", how);
	static struct iocb cbs[4];
	static char bufs[4][16];
	struct iocb *list[4];
	for (int i = 0; i < 4; i++) {
		io_prep_pread(&cbs[i], fd, bufs[i], 16, 16 * i);
		cbs[i].data = (void *)(long)(i + 1);
		list[i] = &cbs[i];
	}
	if (io_submit(ctx, 4, list) != 4) {
		check_report(0, name, "io_submit of 4 reads failed");
		return;
	}
	/* Buffered reads complete inside io_submit: four events wait in the ring now. */
	fflush(stdout);
	pid_t pid = make_child(how);
	if (pid == -2) {
		skip(name, "this way of making a child is not available here");
		struct io_event ev[4];
		io_getevents(ctx, 4, 4, ev, NULL);
		return;
	}
	if (pid < 0) {
		/* clone3 before Linux 5.3, say: ENOSYS. */
		skip(name, "the kernel refused to make the child");
		struct io_event ev[4];
		io_getevents(ctx, 4, 4, ev, NULL);
		return;
	}
	if (pid == 0) {
		struct io_event ev[8];
		struct timespec zero = {0, 0};
		int n = !strcmp(how, "atfork_first") ? early_result
						     : io_getevents(ctx, 0, 8, ev, &zero);
		_exit(n == -EINVAL ? 0 : 1);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	struct io_event ev[8];
	struct timespec second = {1, 0};
	int got = 0;
	while (got < 4) {
		int n = io_getevents(ctx, 1, 8, ev, &second);
		if (n <= 0)
			break;
		got += n;
	}
	check_report(got == 4 && child_ok, name,
		     "the child's io_getevents %s EINVAL; the parent got %d of 4 completions",
		     child_ok ? "gave" : "did not give", got);
}

int main(void)
{
	/* Registered before the library's first io_setup, so it runs before anything the library
	 * could register itself. */
	pthread_atfork(NULL, NULL, early_child_handler);
	ctx = check_begin(16);
	int fd = pattern_file(256);
	const char *ways[] = {"fork", "syscall_fork", "clone", "_Fork", "clone3", "atfork_first"};
	for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++)
		one_way(ways[i], fd);
	io_destroy(ctx);
	return check_end();
}
