/* threads.c: several threads reaping one context at once, each completion delivered exactly
 * once; and a forked child, which has no context, taking nothing from its parent's ring. */
#include "check.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>

#define TOTAL 4000
#define READERS 4

static io_context_t ctx;
static struct iocb cbs[TOTAL];
static unsigned char bufs[TOTAL][16];
static atomic_int seen[TOTAL];
static atomic_int reaped;
static atomic_int reap_errors;
static atomic_int target = TOTAL; /* lowered if submitting fails, so that the readers stop */

/* Half the readers poll with a zero timeout, half block in the kernel with a short one. */
static void *reader(void *arg)
{
	int blocking = (int)(intptr_t)arg & 1;
	struct io_event ev[8];
	while (atomic_load(&reaped) < atomic_load(&target)) {
		struct timespec zero = {0, 0}, ms = {0, 1000 * 1000};
		int n = blocking ? io_getevents(ctx, 1, 8, ev, &ms) : io_getevents(ctx, 0, 8, ev, &zero);
		if (n < 0) {
			atomic_fetch_add(&reap_errors, 1);
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct iocb *cb = ev[i].obj;
			if (cb >= cbs && cb < cbs + TOTAL && ev[i].res == 16)
				atomic_fetch_add(&seen[cb - cbs], 1);
			else
				atomic_fetch_add(&reap_errors, 1);
		}
		atomic_fetch_add(&reaped, n);
	}
	return NULL;
}

int main(void)
{
	ctx = check_begin(128);
	int fd = pattern_file(4096);

	pthread_t threads[READERS];
	for (int i = 0; i < READERS; i++)
		pthread_create(&threads[i], NULL, reader, (void *)(intptr_t)i);
	int submitted = 0, submit_errors = 0;
	while (submitted < TOTAL) {
		struct iocb *list[32];
		int n = TOTAL - submitted < 32 ? TOTAL - submitted : 32;
		for (int i = 0; i < n; i++) {
			io_prep_pread(&cbs[submitted + i], fd, bufs[submitted + i], 16, 16 * ((submitted + i) % 256));
			list[i] = &cbs[submitted + i];
		}
		int ret = io_submit(ctx, n, list);
		if (ret > 0)
			submitted += ret;
		else if (ret == -EAGAIN || ret == 0)
			usleep(100); /* the ring is full: the readers are behind */
		else if (++submit_errors > 100)
			break;
	}
	atomic_store(&target, submitted);
	for (int i = 0; i < READERS; i++)
		pthread_join(threads[i], NULL);
	CHECK("4000 reads submitted", submitted == TOTAL);
	int once = 1;
	for (int i = 0; i < TOTAL; i++)
		once &= atomic_load(&seen[i]) == 1;
	CHECK("4 threads reaping at once: every completion delivered exactly once", once && atomic_load(&reaped) == TOTAL);
	CHECK("and no reader saw an error or a stranger", atomic_load(&reap_errors) == 0);

	/* A completion waits in the ring; the child asks for it and must get EINVAL from the
	 * kernel (the context is not the child's), leaving it to the parent. */
	struct iocb *list[1] = {&cbs[0]};
	io_prep_pread(&cbs[0], fd, bufs[0], 16, 0);
	CHECK("io_submit before fork", io_submit(ctx, 1, list) == 1);
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		check_failures = 0;
		struct io_event ev;
		struct timespec zero = {0, 0};
		EXPECT("forked child: io_getevents on the parent's context: EINVAL", io_getevents(ctx, 0, 1, &ev, &zero), -EINVAL);
		EXPECT("forked child: io_submit on the parent's context: EINVAL", io_submit(ctx, 1, list), -EINVAL);
		fflush(stdout);
		_exit(check_end());
	}
	int status = 0;
	waitpid(child, &status, 0);
	CHECK("forked child passed", WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct io_event ev;
	EXPECT("the parent still gets its completion", io_getevents(ctx, 1, 1, &ev, NULL), 1);
	CHECK("its own", ev.obj == &cbs[0] && ev.res == 16);
	EXPECT("io_destroy", io_destroy(ctx), 0);
	return check_end();
}
