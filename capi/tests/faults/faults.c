/* faults.c: libaio's entry points under the emulated kernels and faults of
 * tests/faults/aiofault.c. `faults <scenario>` prints one line per call, "<what> <return value>",
 * and capi/tests/faults.rs runs it against this package's libaio.so.1 and the system's under the
 * same LINUX_AIO_FAULTS: the two outputs must be the same, and what the test expects.
 * Only cases where libaio 0.3.113 makes the system call are compared (it never reaps from the
 * ring but for a zero timeout on an empty ring; ours does, see src/libaio.rs). */
#define _GNU_SOURCE
#include <errno.h>
#include <libaio.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long ret)
{
	printf("%s %ld\n", what, ret);
	fflush(stdout);
}

static io_context_t setup(int n)
{
	io_context_t ctx = 0;
	int ret = io_setup(n, &ctx);
	if (ret) {
		printf("FAIL io_setup(%d): %d\n", n, ret);
		exit(1);
	}
	return ctx;
}

static int scratch_file(void)
{
	char path[] = "/tmp/linux-aio-capi-faults-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(1);
	}
	unlink(path);
	return fd;
}

static struct timespec ms(long n)
{
	struct timespec ts = {n / 1000, (n % 1000) * 1000000};
	return ts;
}

int main(int argc, char **argv)
{
	const char *s = argc > 1 ? argv[1] : "";
	static char small[8], odd[777];
	struct io_event ev[4];
	struct timespec ts = ms(20);

	if (!strcmp(s, "setup")) {
		io_context_t ctx = 0;
		show("io_setup", io_setup(8, &ctx));
		ctx = 0;
		show("io_queue_init", io_queue_init(8, &ctx));
		ctx = 0;
		show("io_setup again", io_setup(8, &ctx));
		show("io_destroy", io_destroy(ctx));
	} else if (!strcmp(s, "max_nr")) {
		io_context_t a = 0, b = 0, c = 0;
		show("io_setup 32", io_setup(32, &a));
		show("io_setup 32 more", io_setup(32, &b));
		show("io_setup 1 past the limit", io_setup(1, &c));
		show("io_queue_init 1 past the limit", io_queue_init(1, &c));
		show("io_destroy", io_destroy(a));
		show("io_setup 16 after", io_setup(16, &c));
		show("io_destroy", io_destroy(b));
		show("io_destroy", io_destroy(c));
	} else if (!strcmp(s, "submit")) {
		io_context_t ctx = setup(16);
		int fd = scratch_file();
		struct iocb a, b, c, *list[3] = {&a, &b, &c};
		io_prep_pwrite(&a, fd, small, sizeof small, 0);
		io_prep_pwrite(&b, fd, odd, sizeof odd, 8);
		io_prep_pwrite(&c, fd, small, sizeof small, 800);
		show("io_submit of 3, the second refused", io_submit(ctx, 3, list));
		show("io_submit from the refused one", io_submit(ctx, 2, list + 1));
		show("io_submit of the last", io_submit(ctx, 1, list + 2));
		show("io_getevents", io_getevents(ctx, 2, 4, ev, &ts));
		show("io_destroy", io_destroy(ctx));
	} else if (!strcmp(s, "getevents")) {
		/* A poll that never completes: every io_getevents makes the system call. */
		io_context_t ctx = setup(8);
		int efd = eventfd(0, 0);
		struct iocb p, *list[1] = {&p};
		io_prep_poll(&p, efd, POLLIN);
		show("io_submit poll", io_submit(ctx, 1, list));
		show("io_getevents (faulted)", io_getevents(ctx, 1, 1, ev, &ts));
		show("io_getevents (times out)", io_getevents(ctx, 1, 1, ev, &ts));
		sigset_t mask;
		sigemptyset(&mask);
		show("io_pgetevents (faulted)", io_pgetevents(ctx, 1, 1, ev, &ts, &mask));
		show("io_pgetevents (times out)", io_pgetevents(ctx, 1, 1, ev, &ts, &mask));
		show("io_cancel", io_cancel(ctx, &p, ev));
		show("io_getevents of the cancelled poll", io_getevents(ctx, 1, 1, ev, &ts));
		show("io_destroy", io_destroy(ctx));
	} else if (!strcmp(s, "era")) {
		io_context_t ctx = setup(8);
		int efd = eventfd(1, 0), fd = scratch_file();
		struct iocb w, p, *list[2] = {&w, &p};
		io_prep_pwrite(&w, fd, small, sizeof small, 0);
		io_prep_poll(&p, efd, POLLIN);
		show("io_submit write + poll", io_submit(ctx, 2, list));
		show("io_submit poll", io_submit(ctx, 1, list + 1));
		sigset_t mask;
		sigemptyset(&mask);
		struct timespec zero = ms(0);
		show("io_pgetevents", io_pgetevents(ctx, 1, 1, ev, &zero, &mask));
		show("io_getevents", io_getevents(ctx, 1, 1, ev, &ts));
		show("io_destroy", io_destroy(ctx));
	} else if (!strcmp(s, "cancel")) {
		io_context_t ctx = setup(8);
		int efd = eventfd(0, 0), fd = scratch_file();
		struct iocb p, w, *list[1] = {&p};
		io_prep_poll(&p, efd, POLLIN);
		p.data = (void *)0x1234;
		show("io_submit poll", io_submit(ctx, 1, list));
		memset(ev, 0, sizeof ev);
		show("io_cancel", io_cancel(ctx, &p, ev));
		show("result data", (long)ev[0].data);
		show("result obj is the iocb", ev[0].obj == &p);
		show("result res", (long)ev[0].res);
		show("io_getevents (no duplicate)", io_getevents(ctx, 1, 1, ev, &ts));
		io_prep_pwrite(&w, fd, small, sizeof small, 0);
		list[0] = &w;
		show("io_submit write", io_submit(ctx, 1, list));
		show("io_cancel of the write", io_cancel(ctx, &w, ev));
		show("io_getevents", io_getevents(ctx, 1, 1, ev, &ts));
		show("io_destroy", io_destroy(ctx));
	} else if (!strcmp(s, "misaligned")) {
		/* Pointers the kernel accepts at any alignment: io_context_t* and the events. */
		static long long store[8];
		io_context_t *odd_ctx = (io_context_t *)((char *)store + 1);
		static struct io_event evs[3];
		struct io_event *odd_ev = (struct io_event *)((char *)evs + 4);
		memset(odd_ctx, 0, sizeof *odd_ctx);
		show("io_setup, ctxp misaligned", io_setup(8, odd_ctx));
		io_context_t ctx;
		memcpy(&ctx, odd_ctx, sizeof ctx);
		int fd = scratch_file();
		struct iocb w, *list[1] = {&w};
		io_prep_pwrite(&w, fd, small, sizeof small, 0);
		show("io_submit", io_submit(ctx, 1, list));
		show("io_getevents, events misaligned", io_getevents(ctx, 1, 1, odd_ev, &ts));
		struct io_event got;
		memcpy(&got, odd_ev, sizeof got);
		show("event res", (long)got.res);
		show("io_destroy", io_destroy(ctx));
		memset(odd_ctx, 0xff, sizeof *odd_ctx);
		show("io_queue_init, ctxp misaligned", io_queue_init(8, odd_ctx));
		memcpy(&ctx, odd_ctx, sizeof ctx);
		show("io_queue_release", io_queue_release(ctx));
	} else if (!strcmp(s, "destroy")) {
		io_context_t a = setup(8), b = setup(8);
		show("io_destroy (refused)", io_destroy(a));
		show("io_queue_release", io_queue_release(b));
	} else {
		fprintf(stderr, "unknown scenario %s\n", s);
		return 2;
	}
	return 0;
}
