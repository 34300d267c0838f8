/* syscalls.c: when each library makes the io_getevents/io_pgetevents system call.
 *
 * A seccomp filter makes those two system calls fail with EHWPOISON, an errno neither the kernel
 * nor a library would give here, so every result tells whether the call reached the kernel; on
 * the 32-bit architectures io_pgetevents_time64 too, which is how ours makes both there.
 * This is the one program whose expectations differ by library (argv[1]: "ours" or "system"):
 * - libaio 0.3.113 always makes the call, except that a zero timeout on an empty ring returns 0
 *   at once (whatever min_nr);
 * - ours takes what the ring holds first and makes the call only for what is missing: when
 *   fewer than min_nr events are there. io_pgetevents with a signal mask always makes it. */
#include "check.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define KERNEL (-EHWPOISON) /* "the call reached the kernel" */

static int ours;

/* want is ours_want with our library, system_want with the system's. */
#define EXPECT_BY(name, call, ours_want, system_want)                                      \
	do {                                                                               \
		char name_[200];                                                           \
		long w_ = ours ? (long)(ours_want) : (long)(system_want);                  \
		snprintf(name_, sizeof name_, "%s: %s", (name),                            \
			 w_ == KERNEL ? "system call" : w_ == 0 ? "0, no system call" : "events, no system call"); \
		EXPECT(name_, call, w_);                                                   \
	} while (0)

static int deny_getevents(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __NR_io_pgetevents_time64
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_pgetevents_time64, 3, 0),
#endif
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_getevents, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_pgetevents, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EHWPOISON & SECCOMP_RET_DATA)),
	};
	struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static io_context_t ctx;
static int fd, efd;
static struct iocb cbs[8];
static unsigned char bufs[8][32];

/* Submits n reads that signal efd, and waits (on efd, not io_getevents) until they are done. */
static void complete(int n, io_callback_t callback)
{
	struct iocb *list[8];
	for (int i = 0; i < n; i++) {
		io_prep_pread(&cbs[i], fd, bufs[i], 32, 0);
		io_set_eventfd(&cbs[i], efd);
		if (callback)
			cbs[i].data = (void *)callback;
		list[i] = &cbs[i];
	}
	uint64_t count, total = 0;
	if (io_submit(ctx, n, list) != n)
		check_report(0, "io_submit", "could not submit %d reads", n);
	while (total < (uint64_t)n && read(efd, &count, sizeof count) == sizeof count)
		total += count;
}

static int callbacks;
static void count_callback(io_context_t c, struct iocb *iocb, long res, long res2)
{
	(void)c, (void)iocb, (void)res2;
	callbacks += res == 32;
}

int main(int argc, char **argv)
{
	ours = argc > 1 && strcmp(argv[1], "ours") == 0;
	ctx = check_begin(16);
	fd = pattern_file(4096);
	efd = eventfd(0, 0);
	struct io_event ev[8];
	struct timespec zero = {0, 0}, short_wait = {0, 10 * 1000 * 1000};
	sigset_t mask;
	sigemptyset(&mask);
	if (deny_getevents() != 0) {
		skip("all", "a seccomp filter cannot be installed here");
		return 0;
	}

	/* The ring is empty. */
	EXPECT_BY("empty ring, io_getevents(0, 1, zero timeout)", io_getevents(ctx, 0, 1, ev, &zero), 0, 0);
	EXPECT_BY("empty ring, io_getevents(1, 1, zero timeout)", io_getevents(ctx, 1, 1, ev, &zero), KERNEL, 0);
	EXPECT_BY("empty ring, io_getevents(0, 1, no timeout)", io_getevents(ctx, 0, 1, ev, NULL), 0, KERNEL);
	EXPECT_BY("empty ring, io_queue_run", io_queue_run(ctx), 0, 0);
	EXPECT_BY("empty ring, io_queue_wait(zero timeout)", io_queue_wait(ctx, &zero), 0, 0);
	EXPECT_BY("empty ring, io_queue_wait(no timeout)", io_queue_wait(ctx, NULL), 0, KERNEL);
	EXPECT_BY("empty ring, io_pgetevents(0, 1, zero timeout, no mask)",
		  io_pgetevents(ctx, 0, 1, ev, &zero, NULL), 0, 0);
	EXPECT_BY("empty ring, io_pgetevents(0, 1, zero timeout, a mask)",
		  io_pgetevents(ctx, 0, 1, ev, &zero, &mask), KERNEL, 0);

	/* Completions wait in the ring. libaio cannot take any of them from here on (its every
	 * call fails), so they pile up in its ring: each call below makes the system call. */
	complete(2, NULL);
	EXPECT_BY("2 in the ring, io_getevents(2, 2, no timeout)", io_getevents(ctx, 2, 2, ev, NULL), 2, KERNEL);
	complete(1, NULL);
	EXPECT_BY("1 in the ring, io_getevents(2, 4): the one, then the call for the rest",
		  io_getevents(ctx, 2, 4, ev, &short_wait), 1, KERNEL);
	complete(1, count_callback);
	EXPECT_BY("1 in the ring, io_queue_run", io_queue_run(ctx), 0, KERNEL);
	CHECK(ours ? "io_queue_run ran the callback" : "io_queue_run ran no callback",
	      callbacks == (ours ? 1 : 0));
	complete(1, NULL);
	EXPECT_BY("1 in the ring, io_pgetevents(1, 1, no mask)", io_pgetevents(ctx, 1, 1, ev, NULL, NULL), 1, KERNEL);
	complete(1, NULL);
	EXPECT_BY("1 in the ring, io_pgetevents(1, 1, a mask)", io_pgetevents(ctx, 1, 1, ev, NULL, &mask), KERNEL, KERNEL);
	EXPECT("io_destroy", io_destroy(ctx), 0);
	return check_end();
}
