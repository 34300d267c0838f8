/* queue.c: io_set_callback with io_queue_run, the io_poll and io_fsync helpers of libaio.h,
 * io_queue_wait (both versions). */
#include "check.h"
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>

/* io_queue_wait as programs linked against libaio 0.1 call it. */
int io_queue_wait_0_1(io_context_t ctx, struct timespec *timeout);
__asm__(".symver io_queue_wait_0_1, io_queue_wait@LIBAIO_0.1");

static struct {
	io_context_t ctx;
	struct iocb *iocb;
	long res, res2;
} calls[16];
static int ncalls;

static void record(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	if (ncalls < 16) {
		calls[ncalls].ctx = ctx;
		calls[ncalls].iocb = iocb;
		calls[ncalls].res = res;
		calls[ncalls].res2 = res2;
	}
	ncalls++;
}

/* A callback that submits one more read from inside io_queue_run. */
static struct iocb chained;
static unsigned char chained_buf[32];
static int chained_fd;
static void submit_more(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	record(ctx, iocb, res, res2);
	struct iocb *list[1] = {&chained};
	io_prep_pread(&chained, chained_fd, chained_buf, sizeof chained_buf, 0);
	io_set_callback(&chained, record);
	io_submit(ctx, 1, list);
}

/* io_queue_run until `want` callbacks have run in all (polls and fsyncs complete in the kernel's
 * own time), checking what each io_queue_run returned. */
static void run_until(const char *name, io_context_t ctx, int want)
{
	int ret = 0, ret_errno = ERRNO_SENTINEL;
	for (int i = 0; i < 400 && ret == 0 && ncalls < want; i++) {
		if (i)
			usleep(5000);
		errno = ERRNO_SENTINEL;
		ret = io_queue_run(ctx);
		ret_errno = errno;
	}
	check_report(ret == 0 && ret_errno == ERRNO_SENTINEL, name, "io_queue_run returned %d, errno %d", ret,
		     ret_errno);
}

int main(void)
{
	io_destroy(check_begin(1)); /* the library line and the ENOSYS check */
	io_context_t ctx = 0;
	EXPECT("io_queue_init(16)", io_queue_init(16, &ctx), 0);
	struct timespec zero = {0, 0};
	int fd = pattern_file(4096);
	chained_fd = fd;

	EXPECT("io_queue_run with nothing done", io_queue_run(ctx), 0);
	CHECK("and no callback", ncalls == 0);

	/* Three reads with callbacks; buffered reads are done when io_submit returns. */
	struct iocb cbs[3];
	struct iocb *list[3];
	unsigned char bufs[3][100];
	for (int i = 0; i < 3; i++) {
		io_prep_pread(&cbs[i], fd, bufs[i], 100, 100 * i);
		io_set_callback(&cbs[i], record);
		list[i] = &cbs[i];
	}
	EXPECT("io_submit 3 reads with callbacks", io_submit(ctx, 3, list), 3);
	EXPECT("io_queue_run", io_queue_run(ctx), 0);
	int all = ncalls == 3;
	for (int i = 0; all && i < 3; i++)
		all = calls[i].ctx == ctx && calls[i].iocb == &cbs[i] && calls[i].res == 100 &&
		      calls[i].res2 == 0;
	CHECK("io_queue_run called each callback once, in order, with ctx, iocb, res, res2", all);
	EXPECT("io_queue_run again: nothing left", io_queue_run(ctx), 0);
	CHECK("and no more callbacks", ncalls == 3);

	/* A callback may submit more; the same run picks it up. */
	ncalls = 0;
	io_prep_pread(&cbs[0], fd, bufs[0], 100, 0);
	io_set_callback(&cbs[0], submit_more);
	EXPECT("io_submit a read whose callback submits another", io_submit(ctx, 1, list), 1);
	EXPECT("io_queue_run", io_queue_run(ctx), 0);
	CHECK("both callbacks ran in one io_queue_run",
	      ncalls == 2 && calls[0].iocb == &cbs[0] && calls[1].iocb == &chained && calls[1].res == 32);

	/* io_poll (io_prep_poll + io_set_callback + io_submit), completed later. */
	int p[2];
	if (pipe(p) != 0)
		return 1;
	ncalls = 0;
	struct iocb poll_cb;
	int ret = io_poll(ctx, &poll_cb, record, p[0], POLLIN);
	if (ret == -EINVAL) {
		skip("io_poll", "IOCB_CMD_POLL: EINVAL (kernel older than 4.19)");
	} else {
		CHECK("io_poll submits", ret == 1);
		EXPECT("io_queue_run while the poll is pending", io_queue_run(ctx), 0);
		CHECK("no callback yet", ncalls == 0);
		CHECK("write to the pipe", write(p[1], "x", 1) == 1);
		/* The poll may complete in the writer's call or a moment later. */
		run_until("io_queue_run after the write", ctx, 1);
		CHECK("its callback gets POLLIN", ncalls == 1 && calls[0].iocb == &poll_cb && (calls[0].res & POLLIN));
	}

	/* An eventfd tells when a poll completed; io_queue_run then delivers it. */
	int efd = eventfd(0, 0);
	ncalls = 0;
	io_prep_poll(&poll_cb, p[0], POLLIN);
	io_set_callback(&poll_cb, record);
	io_set_eventfd(&poll_cb, efd);
	list[0] = &poll_cb;
	if (io_submit(ctx, 1, list) == 1) {
		uint64_t count;
		CHECK("the eventfd signals the poll", read(efd, &count, sizeof count) == sizeof count);
		EXPECT("io_queue_run", io_queue_run(ctx), 0);
		CHECK("the poll's callback ran", ncalls == 1 && calls[0].iocb == &poll_cb && (calls[0].res & POLLIN));
	}

	/* io_fsync: io_prep_fsync + io_set_callback + io_submit. */
	ncalls = 0;
	struct iocb sync_cb;
	EXPECT("io_fsync", io_fsync(ctx, &sync_cb, record, fd), 1);
	run_until("io_queue_run after io_fsync", ctx, 1);
	CHECK("the fsync callback got 0", ncalls == 1 && calls[0].iocb == &sync_cb && calls[0].res == 0);

	/* io_queue_wait is io_getevents(ctx, 0, 0, NULL, timeout): it never waits. */
	EXPECT("io_queue_wait, zero timeout", io_queue_wait(ctx, &zero), 0);
	EXPECT("io_queue_wait, no timeout", io_queue_wait(ctx, NULL), 0);
	EXPECT("io_queue_wait@LIBAIO_0.1", io_queue_wait_0_1(ctx, &zero), 0);
	EXPECT("io_queue_wait@LIBAIO_0.1, no timeout", io_queue_wait_0_1(ctx, NULL), 0);
	EXPECT("io_queue_wait(NULL ctx): EINVAL", io_queue_wait(NULL, &zero), -EINVAL);
	EXPECT("io_queue_wait@LIBAIO_0.1(NULL ctx): EINVAL", io_queue_wait_0_1(NULL, NULL), -EINVAL);
	EXPECT("io_queue_run(NULL ctx): EINVAL", io_queue_run(NULL), -EINVAL);

	EXPECT("io_queue_release", io_queue_release(ctx), 0);
	return check_end();
}
