/* rw.c: io_submit and io_getevents (both versions), io_pgetevents, io_set_eventfd, with the
 * io_prep_* helpers of libaio.h, and their errors. */
#include "check.h"
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/uio.h>

/* io_getevents as programs linked against libaio 0.1 call it: min_nr is always 1. */
int io_getevents_0_1(io_context_t ctx, long nr, struct io_event *events, struct timespec *timeout);
__asm__(".symver io_getevents_0_1, io_getevents@LIBAIO_0.1");

static int pattern_ok(const unsigned char *buf, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != (unsigned char)((off + i) * 7 + 3))
			return 0;
	return 1;
}

static int sigusr1_seen;
static void on_sigusr1(int sig)
{
	(void)sig;
	sigusr1_seen = 1;
}

int main(void)
{
	io_context_t ctx = check_begin(64);
	struct timespec zero = {0, 0};
	struct timespec short_wait = {0, 20 * 1000 * 1000};
	struct io_event ev[16];
	int fd = pattern_file(8192);

	/* One read, its event in full. */
	unsigned char buf[4096];
	struct iocb cb;
	struct iocb *list[16] = {&cb};
	io_prep_pread(&cb, fd, buf, sizeof buf, 100);
	cb.data = (void *)(uintptr_t)0xfeed;
	EXPECT("io_submit one pread", io_submit(ctx, 1, list), 1);
	EXPECT("io_getevents(1, 1) after a pread", io_getevents(ctx, 1, 1, ev, NULL), 1);
	CHECK("pread event: obj is the iocb", ev[0].obj == &cb);
	CHECK("pread event: data preserved", ev[0].data == (void *)(uintptr_t)0xfeed);
	CHECK("pread event: res is the byte count", ev[0].res == sizeof buf && ev[0].res2 == 0);
	CHECK("pread data", pattern_ok(buf, 100, sizeof buf));
	EXPECT("io_getevents with nothing pending, zero timeout", io_getevents(ctx, 0, 4, ev, &zero), 0);
	EXPECT("io_getevents(1, 4) times out", io_getevents(ctx, 1, 4, ev, &short_wait), 0);

	/* Write, then read back through vectors; fsync and fdatasync. */
	unsigned char out[512], a[256], b[256];
	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (unsigned char)((5000 + i) * 7 + 3);
	io_prep_pwrite(&cb, fd, out, sizeof out, 5000);
	EXPECT("io_submit pwrite", io_submit(ctx, 1, list), 1);
	EXPECT("pwrite completes", io_getevents(ctx, 1, 1, ev, NULL), 1);
	CHECK("pwrite res", ev[0].res == sizeof out);
	struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
	io_prep_preadv(&cb, fd, iov, 2, 5000);
	EXPECT("io_submit preadv", io_submit(ctx, 1, list), 1);
	EXPECT("preadv completes", io_getevents(ctx, 1, 1, ev, NULL), 1);
	CHECK("preadv res and data", ev[0].res == 512 && pattern_ok(a, 5000, 256) && pattern_ok(b, 5256, 256));
	io_prep_pwritev(&cb, fd, iov, 2, 6000);
	EXPECT("io_submit pwritev", io_submit(ctx, 1, list), 1);
	EXPECT("pwritev completes", io_getevents(ctx, 1, 1, ev, NULL), 1);
	CHECK("pwritev res", ev[0].res == 512);
	io_prep_fsync(&cb, fd);
	EXPECT("io_submit fsync", io_submit(ctx, 1, list), 1);
	EXPECT("fsync completes", io_getevents(ctx, 1, 1, ev, NULL), 1);
	CHECK("fsync res", ev[0].res == 0);
	io_prep_fdsync(&cb, fd);
	EXPECT("io_submit fdsync", io_submit(ctx, 1, list), 1);
	EXPECT("fdsync completes", io_getevents(ctx, 1, 1, ev, NULL), 1);
	CHECK("fdsync res", ev[0].res == 0);

	/* A batch of 8, taken in parts: 3, then the rest with min_nr above what one call can give. */
	struct iocb batch[8];
	unsigned char bufs[8][64];
	for (int i = 0; i < 8; i++) {
		io_prep_pread(&batch[i], fd, bufs[i], 64, 64 * i);
		batch[i].data = (void *)(uintptr_t)i;
		list[i] = &batch[i];
	}
	EXPECT("io_submit a batch of 8", io_submit(ctx, 8, list), 8);
	EXPECT("io_getevents(1, 3) of 8", io_getevents(ctx, 1, 3, ev, NULL), 3);
	EXPECT("io_getevents(5, 16) of the other 5", io_getevents(ctx, 5, 16, ev + 3, NULL), 5);
	unsigned seen = 0;
	for (int i = 0; i < 8; i++)
		seen |= 1u << (uintptr_t)ev[i].data;
	CHECK("the batch's 8 events, each once", seen == 0xff);
	int data_ok = 1;
	for (int i = 0; i < 8; i++)
		data_ok &= pattern_ok(bufs[i], 64 * i, 64);
	CHECK("the batch's data", data_ok);

	/* io_getevents@LIBAIO_0.1: min_nr 1. */
	io_prep_pread(&batch[0], fd, bufs[0], 64, 0);
	list[0] = &batch[0];
	EXPECT("io_submit for io_getevents@LIBAIO_0.1", io_submit(ctx, 1, list), 1);
	EXPECT("io_getevents@LIBAIO_0.1", io_getevents_0_1(ctx, 4, ev, NULL), 1);
	CHECK("io_getevents@LIBAIO_0.1 event", ev[0].obj == &batch[0] && ev[0].res == 64);
	EXPECT("io_getevents@LIBAIO_0.1 times out", io_getevents_0_1(ctx, 4, ev, &short_wait), 0);

	/* io_set_eventfd: the kernel counts each completion on the eventfd. */
	int efd = eventfd(0, 0);
	io_prep_pread(&batch[0], fd, bufs[0], 64, 0);
	io_set_eventfd(&batch[0], efd);
	io_prep_pread(&batch[1], fd, bufs[1], 64, 64);
	io_set_eventfd(&batch[1], efd);
	list[0] = &batch[0];
	list[1] = &batch[1];
	EXPECT("io_submit with io_set_eventfd", io_submit(ctx, 2, list), 2);
	uint64_t count = 0;
	CHECK("eventfd counts 2 completions", read(efd, &count, sizeof count) == sizeof count && count == 2);
	EXPECT("and both events are there", io_getevents(ctx, 2, 2, ev, NULL), 2);
	close(efd);

	/* io_pgetevents: without a mask, with one, and with one that lets a pending signal in. */
	io_prep_pread(&batch[0], fd, bufs[0], 64, 0);
	list[0] = &batch[0];
	int pget = io_submit(ctx, 1, list) == 1 ? io_pgetevents(ctx, 1, 1, ev, NULL, NULL) : -1;
	if (pget == -ENOSYS) {
		skip("io_pgetevents", "ENOSYS: the kernel is older than 4.18");
		io_getevents(ctx, 1, 1, ev, NULL);
	} else {
		CHECK("io_pgetevents without a mask", pget == 1 && ev[0].obj == &batch[0]);
		sigset_t all;
		sigfillset(&all);
		EXPECT("io_submit for io_pgetevents", io_submit(ctx, 1, list), 1);
		EXPECT("io_pgetevents with a full mask", io_pgetevents(ctx, 1, 1, ev, NULL, &all), 1);
		EXPECT("io_pgetevents, nothing pending", io_pgetevents(ctx, 0, 1, ev, &zero, &all), 0);

		signal(SIGUSR1, on_sigusr1);
		sigset_t usr1, open_mask;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		sigprocmask(SIG_BLOCK, &usr1, NULL);
		raise(SIGUSR1);
		sigemptyset(&open_mask);
		struct timespec second = {1, 0};
		EXPECT("io_pgetevents: a pending signal the mask lets in gives EINTR",
		       io_pgetevents(ctx, 1, 1, ev, &second, &open_mask), -EINTR);
		CHECK("and its handler ran", sigusr1_seen == 1);
		sigprocmask(SIG_UNBLOCK, &usr1, NULL);
	}

	/* Errors, each with errno untouched. */
	struct { unsigned id, nr, head, tail, magic; } not_a_ring = {0, 0, 0, 0, 0};
	io_context_t bogus = (io_context_t)&not_a_ring;
	EXPECT("io_getevents(NULL ctx): EINVAL", io_getevents(NULL, 0, 1, ev, NULL), -EINVAL);
	EXPECT("io_getevents on a non-context: EINVAL", io_getevents(bogus, 0, 1, ev, NULL), -EINVAL);
	EXPECT("io_getevents min_nr > nr: EINVAL", io_getevents(ctx, 2, 1, ev, NULL), -EINVAL);
	EXPECT("io_getevents min_nr < 0: EINVAL", io_getevents(ctx, -1, 1, ev, NULL), -EINVAL);
	EXPECT("io_submit(NULL ctx): EINVAL", io_submit(NULL, 1, list), -EINVAL);
	EXPECT("io_submit nr < 0: EINVAL", io_submit(ctx, -1, list), -EINVAL);
	EXPECT("io_submit nr 0", io_submit(ctx, 0, list), 0);
	io_prep_pread(&batch[0], 9999, bufs[0], 64, 0);
	EXPECT("io_submit on a bad fd: EBADF", io_submit(ctx, 1, list), -EBADF);
	io_prep_pread(&batch[0], fd, bufs[0], 64, 0);
	io_prep_pread(&batch[1], 9999, bufs[1], 64, 0);
	EXPECT("io_submit stops at the first bad iocb", io_submit(ctx, 2, list), 1);
	EXPECT("and the good one completes", io_getevents(ctx, 1, 1, ev, NULL), 1);
	io_prep_pread(&batch[0], fd, bufs[0], 64, 0);
	EXPECT("io_submit a read to leave in the ring", io_submit(ctx, 1, list), 1);
	EXPECT("io_getevents into a NULL buffer: EFAULT", io_getevents(ctx, 1, 1, NULL, NULL), -EFAULT);
	EXPECT("the event is still there afterwards", io_getevents(ctx, 1, 1, ev, NULL), 1);
	EXPECT("io_destroy", io_destroy(ctx), 0);
	return check_end();
}
