/*
 * libaio (libaio-dev's libaio.h, -laio) used the way its documentation shows: io_prep_* to fill
 * the iocbs, io_submit, io_getevents. libaio's io_getevents only looks at the ring to return 0
 * early for a zero timeout; with events waiting it always makes the system call.
 */
#include <errno.h>
#include <libaio.h>
#include <poll.h>
#include <stdlib.h>

#include "bench.h"

struct la {
    io_context_t ctx;
};

void *la_open(unsigned depth)
{
    struct la *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    if (io_queue_init((int)depth, &h->ctx) < 0) {
        free(h);
        return NULL;
    }
    return h;
}

void la_close(void *p)
{
    struct la *h = p;
    io_queue_release(h->ctx);
    free(h);
}

long la_poll(void *p, int efd, int batch, long rounds)
{
    struct la *h = p;
    struct iocb cbs[BENCH_MAX_BATCH];
    struct iocb *ptrs[BENCH_MAX_BATCH];
    struct io_event evs[BENCH_MAX_BATCH];

    if (batch < 1 || batch > BENCH_MAX_BATCH)
        return -EINVAL;
    for (int i = 0; i < batch; i++) {
        io_prep_poll(&cbs[i], efd, POLLIN);
        cbs[i].data = (void *)(uintptr_t)i;
        ptrs[i] = &cbs[i];
    }
    for (long r = 0; r < rounds; r++) {
        int ret = io_submit(h->ctx, batch, ptrs);
        if (ret != batch)
            return ret < 0 ? ret : -EIO;
        int got = 0;
        while (got < batch) {
            ret = io_getevents(h->ctx, batch - got, batch - got, evs + got, NULL);
            if (ret < 0)
                return ret;
            got += ret;
        }
        for (int i = 0; i < batch; i++)
            if ((long)evs[i].res <= 0)
                return -EIO;
    }
    return 0;
}

long la_reads(void *p, const struct reads_job *job)
{
    struct la *h = p;
    struct iocb cbs[BENCH_MAX_BATCH];
    struct iocb *ptrs[BENCH_MAX_BATCH];
    struct io_event evs[BENCH_MAX_BATCH];
    int qd = job->qd;
    size_t next = job->start;
    long submitted = 0, done = 0;

    if (qd < 1 || qd > BENCH_MAX_BATCH)
        return -EINVAL;
    int first = job->total < qd ? (int)job->total : qd;
    for (int i = 0; i < first; i++) {
        io_prep_pread(&cbs[i], job->fd, job->bufs + (size_t)i * BENCH_READ_SIZE,
                      BENCH_READ_SIZE, (long long)job->offsets[next++ & job->mask]);
        cbs[i].data = (void *)(uintptr_t)i;
        ptrs[i] = &cbs[i];
    }
    if (first > 0) {
        int ret = io_submit(h->ctx, first, ptrs);
        if (ret != first)
            return ret < 0 ? ret : -EIO;
    }
    submitted = first;
    while (done < job->total) {
        int got = io_getevents(h->ctx, 1, qd, evs, NULL);
        if (got < 0)
            return got;
        done += got;
        int k = 0;
        for (int i = 0; i < got; i++) {
            if ((long)evs[i].res != BENCH_READ_SIZE)
                return -EIO;
            if (submitted < job->total) {
                int slot = (int)(uintptr_t)evs[i].data;
                io_prep_pread(&cbs[slot], job->fd, job->bufs + (size_t)slot * BENCH_READ_SIZE,
                              BENCH_READ_SIZE, (long long)job->offsets[next++ & job->mask]);
                cbs[slot].data = (void *)(uintptr_t)slot;
                ptrs[k++] = &cbs[slot];
                submitted++;
            }
        }
        if (k > 0) {
            int ret = io_submit(h->ctx, k, ptrs);
            if (ret != k)
                return ret < 0 ? ret : -EIO;
        }
    }
    return 0;
}

long la_setup_teardown(unsigned depth, long iterations, struct setup_times *out)
{
    out->setup_ns = out->teardown_ns = 0;
    for (long i = 0; i < iterations; i++) {
        io_context_t ctx = 0;
        uint64_t t0 = bench_now_ns();
        int ret = io_queue_init((int)depth, &ctx);
        uint64_t t1 = bench_now_ns();
        if (ret < 0)
            return ret;
        ret = io_queue_release(ctx);
        uint64_t t2 = bench_now_ns();
        if (ret < 0)
            return ret;
        out->setup_ns += t1 - t0;
        out->teardown_ns += t2 - t1;
    }
    return 0;
}
