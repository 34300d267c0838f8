/*
 * The floor: the least work a program can do per request through kernel AIO. Raw io_submit and
 * io_getevents (inline `syscall` on x86_64, glibc's syscall() elsewhere), iocbs built once, and
 * completions copied straight out of the ring the kernel maps at the context address, trusting
 * the ring header completely (the crate under test must not: it validates). Whatever the crate
 * costs above this loop is its own overhead.
 */
#include <errno.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

/* The ring header at the context address (not in the UAPI headers). */
struct ring_header {
    unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

#define RING_MAGIC 0xa10a10a1u

struct fl {
    aio_context_t ctx;
};

#if defined(__x86_64__)
static inline long sys2(long n, long a, long b)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return ret;
}

static inline long sys3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long sys5(long n, long a, long b, long c, long d, long e)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}
#else
static inline long fix(long r) { return r < 0 ? -errno : r; }
static inline long sys2(long n, long a, long b) { return fix(syscall(n, a, b)); }
static inline long sys3(long n, long a, long b, long c) { return fix(syscall(n, a, b, c)); }
static inline long sys5(long n, long a, long b, long c, long d, long e)
{
    return fix(syscall(n, a, b, c, d, e));
}
#endif

static inline long fl_submit(aio_context_t ctx, long n, struct iocb **ptrs)
{
    return sys3(SYS_io_submit, (long)ctx, n, (long)ptrs);
}

/* Copies up to `max` completions out of the ring; no system call. */
static inline int ring_reap(aio_context_t ctx, struct io_event *out, int max)
{
    struct ring_header *r = (struct ring_header *)ctx;
    struct io_event *ring = (struct io_event *)(r + 1);
    unsigned nr = r->nr;
    unsigned head = r->head;
    unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    int n = 0;
    while (head != tail && n < max) {
        out[n++] = ring[head];
        if (++head == nr)
            head = 0;
    }
    if (n > 0)
        __atomic_store_n(&r->head, head, __ATOMIC_RELEASE);
    return n;
}

/* At least `min` completions: from the ring first, then io_getevents for the rest. */
static inline long fl_wait(aio_context_t ctx, struct io_event *out, int min, int max)
{
    int n = ring_reap(ctx, out, max);
    if (n >= min)
        return n;
    long ret = sys5(SYS_io_getevents, (long)ctx, min - n, max - n, (long)(out + n), 0);
    if (ret < 0)
        return n > 0 ? n : ret;
    return n + ret;
}

void *fl_open(unsigned depth)
{
    struct fl *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    if (sys2(SYS_io_setup, (long)depth, (long)&h->ctx) < 0) {
        free(h);
        return NULL;
    }
    const struct ring_header *r = (const struct ring_header *)h->ctx;
    if (r->magic != RING_MAGIC || r->incompat_features != 0 || r->header_length != sizeof *r) {
        sys2(SYS_io_destroy, (long)h->ctx, 0);
        free(h);
        return NULL;
    }
    return h;
}

void fl_close(void *p)
{
    struct fl *h = p;
    sys2(SYS_io_destroy, (long)h->ctx, 0);
    free(h);
}

long fl_poll(void *p, int efd, int batch, long rounds)
{
    struct fl *h = p;
    struct iocb cbs[BENCH_MAX_BATCH];
    struct iocb *ptrs[BENCH_MAX_BATCH];
    struct io_event evs[BENCH_MAX_BATCH];

    if (batch < 1 || batch > BENCH_MAX_BATCH)
        return -EINVAL;
    memset(cbs, 0, sizeof cbs);
    for (int i = 0; i < batch; i++) {
        cbs[i].aio_lio_opcode = IOCB_CMD_POLL;
        cbs[i].aio_fildes = (unsigned)efd;
        cbs[i].aio_buf = POLLIN;
        cbs[i].aio_data = (uint64_t)i;
        ptrs[i] = &cbs[i];
    }
    for (long r = 0; r < rounds; r++) {
        long ret = fl_submit(h->ctx, batch, ptrs);
        if (ret != batch)
            return ret < 0 ? ret : -EIO;
        int got = 0;
        while (got < batch) {
            ret = fl_wait(h->ctx, evs + got, batch - got, batch - got);
            if (ret < 0)
                return ret;
            got += (int)ret;
        }
        for (int i = 0; i < batch; i++)
            if (evs[i].res <= 0)
                return -EIO;
    }
    return 0;
}

long fl_reads(void *p, const struct reads_job *job)
{
    struct fl *h = p;
    struct iocb cbs[BENCH_MAX_BATCH];
    struct iocb *ptrs[BENCH_MAX_BATCH];
    struct io_event evs[BENCH_MAX_BATCH];
    int qd = job->qd;
    size_t next = job->start;
    long submitted, done = 0;

    if (qd < 1 || qd > BENCH_MAX_BATCH)
        return -EINVAL;
    memset(cbs, 0, sizeof cbs);
    for (int i = 0; i < qd; i++) {
        cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
        cbs[i].aio_fildes = (unsigned)job->fd;
        cbs[i].aio_buf = (uint64_t)(uintptr_t)(job->bufs + (size_t)i * BENCH_READ_SIZE);
        cbs[i].aio_nbytes = BENCH_READ_SIZE;
        cbs[i].aio_data = (uint64_t)i;
    }
    int first = job->total < qd ? (int)job->total : qd;
    for (int i = 0; i < first; i++) {
        cbs[i].aio_offset = (int64_t)job->offsets[next++ & job->mask];
        ptrs[i] = &cbs[i];
    }
    if (first > 0) {
        long ret = fl_submit(h->ctx, first, ptrs);
        if (ret != first)
            return ret < 0 ? ret : -EIO;
    }
    submitted = first;
    while (done < job->total) {
        long got = fl_wait(h->ctx, evs, 1, qd);
        if (got < 0)
            return got;
        done += got;
        int k = 0;
        for (int i = 0; i < got; i++) {
            if (evs[i].res != BENCH_READ_SIZE)
                return -EIO;
            if (submitted < job->total) {
                unsigned slot = (unsigned)evs[i].data;
                cbs[slot].aio_offset = (int64_t)job->offsets[next++ & job->mask];
                ptrs[k++] = &cbs[slot];
                submitted++;
            }
        }
        if (k > 0) {
            long ret = fl_submit(h->ctx, k, ptrs);
            if (ret != k)
                return ret < 0 ? ret : -EIO;
        }
    }
    return 0;
}

long fl_setup_teardown(unsigned depth, long iterations, struct setup_times *out)
{
    out->setup_ns = out->teardown_ns = 0;
    for (long i = 0; i < iterations; i++) {
        aio_context_t ctx = 0;
        uint64_t t0 = bench_now_ns();
        long ret = sys2(SYS_io_setup, (long)depth, (long)&ctx);
        uint64_t t1 = bench_now_ns();
        if (ret < 0)
            return ret;
        ret = sys2(SYS_io_destroy, (long)ctx, 0);
        uint64_t t2 = bench_now_ns();
        if (ret < 0)
            return ret;
        out->setup_ns += t1 - t0;
        out->teardown_ns += t2 - t1;
    }
    return 0;
}
