/* cancel.c: io_cancel (both versions) on a pending poll, on a file read, and its errors;
 * io_destroy with a poll still pending. */
#include "check.h"
#include <poll.h>
#include <stdint.h>

/* io_cancel as programs linked against libaio 0.1 call it: no result argument. */
int io_cancel_0_1(io_context_t ctx, struct iocb *iocb);
__asm__(".symver io_cancel_0_1, io_cancel@LIBAIO_0.1");

/* A poll that cannot complete until something is written to p[1]. */
static int submit_poll(io_context_t ctx, struct iocb *cb, int p[2], void *data)
{
	struct iocb *list[1] = {cb};
	io_prep_poll(cb, p[0], POLLIN);
	cb->data = data;
	return io_submit(ctx, 1, list);
}

/* The cancelled poll's event: from io_cancel itself (kernels before 3.12) or the ring (since). */
static void expect_cancelled(const char *what, io_context_t ctx, int ret, struct io_event *result,
			     struct iocb *cb, void *data)
{
	char name[160];
	struct io_event ev;
	if (ret == -EINPROGRESS) {
		snprintf(name, sizeof name, "%s: the cancelled poll's event comes through the ring", what);
		struct timespec second = {1, 0};
		int got = io_getevents(ctx, 1, 1, &ev, &second);
		CHECK(name, got == 1 && ev.obj == cb && ev.data == data && ev.res == 0);
	} else if (ret == 0 && result) {
		snprintf(name, sizeof name, "%s: the cancelled poll's event is in the result", what);
		CHECK(name, result->obj == cb && result->data == data);
	} else {
		snprintf(name, sizeof name, "%s: -EINPROGRESS (or 0 before Linux 3.12)", what);
		check_report(0, name, "returned %d", ret);
	}
}

int main(void)
{
	io_context_t ctx = check_begin(16);
	int p[2];
	if (pipe(p) != 0)
		return 1;
	struct iocb poll_cb;
	struct io_event result, ev[4];
	void *tag = (void *)(uintptr_t)0xc0ffee;

	int ret = submit_poll(ctx, &poll_cb, p, tag);
	if (ret == -EINVAL) {
		skip("io_cancel of a poll", "IOCB_CMD_POLL: EINVAL (kernel older than 4.19)");
	} else {
		CHECK("io_submit a poll", ret == 1);
		struct timespec zero = {0, 0};
		EXPECT("the poll is pending", io_getevents(ctx, 0, 1, ev, &zero), 0);
		errno = ERRNO_SENTINEL;
		ret = io_cancel(ctx, &poll_cb, &result);
		CHECK("io_cancel of a poll leaves errno alone", errno == ERRNO_SENTINEL);
		expect_cancelled("io_cancel of a pending poll", ctx, ret, &result, &poll_cb, tag);
		EXPECT("io_cancel of the same poll again: EINVAL", io_cancel(ctx, &poll_cb, &result), -EINVAL);

		CHECK("io_submit another poll", submit_poll(ctx, &poll_cb, p, tag) == 1);
		errno = ERRNO_SENTINEL;
		ret = io_cancel_0_1(ctx, &poll_cb);
		CHECK("io_cancel@LIBAIO_0.1 leaves errno alone", errno == ERRNO_SENTINEL);
		expect_cancelled("io_cancel@LIBAIO_0.1 of a pending poll", ctx, ret, NULL, &poll_cb, tag);

		/* A poll that did complete is no longer cancellable. */
		CHECK("io_submit a third poll", submit_poll(ctx, &poll_cb, p, tag) == 1);
		CHECK("write to the pipe", write(p[1], "x", 1) == 1);
		struct timespec second = {1, 0};
		EXPECT("the poll completes", io_getevents(ctx, 1, 1, ev, &second), 1);
		CHECK("with POLLIN", ev[0].obj == &poll_cb && (ev[0].res & POLLIN));
		EXPECT("io_cancel of a completed poll: EINVAL", io_cancel(ctx, &poll_cb, &result), -EINVAL);
		char c;
		CHECK("drain the pipe", read(p[0], &c, 1) == 1);
	}

	/* File reads complete inside io_submit and cannot be cancelled. */
	int fd = pattern_file(4096);
	unsigned char buf[512];
	struct iocb read_cb;
	struct iocb *list[1] = {&read_cb};
	io_prep_pread(&read_cb, fd, buf, sizeof buf, 0);
	EXPECT("io_submit a file read", io_submit(ctx, 1, list), 1);
	EXPECT("io_cancel of a file read: EINVAL", io_cancel(ctx, &read_cb, &result), -EINVAL);
	EXPECT("io_cancel@LIBAIO_0.1 of a file read: EINVAL", io_cancel_0_1(ctx, &read_cb), -EINVAL);
	EXPECT("the read's event is delivered", io_getevents(ctx, 1, 1, ev, NULL), 1);
	CHECK("the read's result", ev[0].obj == &read_cb && ev[0].res == sizeof buf);

	EXPECT("io_cancel(NULL ctx): EINVAL", io_cancel(NULL, &read_cb, &result), -EINVAL);
	EXPECT("io_cancel of a NULL iocb: EFAULT", io_cancel(ctx, NULL, &result), -EFAULT);
	struct iocb never;
	io_prep_pread(&never, fd, buf, sizeof buf, 0);
	EXPECT("io_cancel of an iocb never submitted: EINVAL", io_cancel(ctx, &never, &result), -EINVAL);

	/* io_destroy waits for (and cancels) a pending poll. */
	if (submit_poll(ctx, &poll_cb, p, tag) == 1)
		EXPECT("io_destroy with a poll pending", io_destroy(ctx), 0);
	else
		EXPECT("io_destroy", io_destroy(ctx), 0);
	EXPECT("io_cancel on a destroyed context: EINVAL", io_cancel(ctx, &poll_cb, &result), -EINVAL);
	return check_end();
}
