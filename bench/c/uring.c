/*
 * io_uring through liburing (liburing-dev), used the plain way: a ring with default flags (no
 * SQPOLL, no registered files or buffers), SQEs prepared with io_uring_prep_*, one
 * io_uring_submit_and_wait per round (submission and waiting in the same system call), CQEs
 * walked in place and released with io_uring_cq_advance. Unlike AIO, SQEs cannot be prebuilt:
 * every request is written into the submission ring again.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>

#include "bench.h"

struct ur {
    struct io_uring ring;
};

void *ur_open(unsigned entries)
{
    struct ur *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    if (io_uring_queue_init(entries, &h->ring, 0) < 0) {
        free(h);
        return NULL;
    }
    return h;
}

void ur_close(void *p)
{
    struct ur *h = p;
    io_uring_queue_exit(&h->ring);
    free(h);
}

/* Counts and releases every CQE available now; -EIO if a result is outside [min_res, max_res]. */
static inline int drain_cqes(struct io_uring *ring, int min_res, int max_res)
{
    unsigned head, seen = 0;
    struct io_uring_cqe *cqe;
    int bad = 0;
    io_uring_for_each_cqe(ring, head, cqe)
    {
        if (cqe->res < min_res || cqe->res > max_res)
            bad = 1;
        seen++;
    }
    io_uring_cq_advance(ring, seen);
    return bad ? -EIO : (int)seen;
}

long ur_poll(void *p, int efd, int batch, long rounds)
{
    struct ur *h = p;
    if (batch < 1 || batch > BENCH_MAX_BATCH)
        return -EINVAL;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < batch; i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&h->ring);
            if (!sqe)
                return -EBUSY;
            io_uring_prep_poll_add(sqe, efd, POLLIN);
            sqe->user_data = (uint64_t)i;
        }
        int ret = io_uring_submit_and_wait(&h->ring, (unsigned)batch);
        if (ret != batch)
            return ret < 0 ? ret : -EIO;
        int got = 0;
        while (got < batch) {
            int n = drain_cqes(&h->ring, 1, 0xffff);
            if (n < 0)
                return n;
            got += n;
            if (got < batch) {
                struct io_uring_cqe *cqe;
                ret = io_uring_wait_cqe(&h->ring, &cqe);
                if (ret < 0)
                    return ret;
            }
        }
    }
    return 0;
}

static inline int prep_read(struct io_uring *ring, const struct reads_job *job, unsigned slot,
                            size_t *next)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, job->fd, job->bufs + (size_t)slot * BENCH_READ_SIZE, BENCH_READ_SIZE,
                       job->offsets[(*next)++ & job->mask]);
    sqe->user_data = slot;
    return 0;
}

long ur_reads(void *p, const struct reads_job *job)
{
    struct ur *h = p;
    int qd = job->qd;
    size_t next = job->start;
    long submitted, done = 0;

    if (qd < 1 || qd > BENCH_MAX_BATCH)
        return -EINVAL;
    int first = job->total < qd ? (int)job->total : qd;
    for (int i = 0; i < first; i++)
        if (prep_read(&h->ring, job, (unsigned)i, &next) < 0)
            return -EBUSY;
    submitted = first;
    while (done < job->total) {
        /* Submits the reads prepared last round and waits for one completion. */
        int ret = io_uring_submit_and_wait(&h->ring, 1);
        if (ret < 0)
            return ret;
        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        int bad = 0;
        io_uring_for_each_cqe(&h->ring, head, cqe)
        {
            if (cqe->res != BENCH_READ_SIZE)
                bad = 1;
            if (submitted < job->total) {
                if (prep_read(&h->ring, job, (unsigned)cqe->user_data, &next) < 0)
                    bad = 1;
                submitted++;
            }
            seen++;
        }
        io_uring_cq_advance(&h->ring, seen);
        if (bad)
            return -EIO;
        done += seen;
    }
    return 0;
}

long ur_setup_teardown(unsigned entries, long iterations, struct setup_times *out)
{
    out->setup_ns = out->teardown_ns = 0;
    for (long i = 0; i < iterations; i++) {
        struct io_uring ring;
        uint64_t t0 = bench_now_ns();
        int ret = io_uring_queue_init(entries, &ring, 0);
        uint64_t t1 = bench_now_ns();
        if (ret < 0)
            return ret;
        io_uring_queue_exit(&ring);
        uint64_t t2 = bench_now_ns();
        out->setup_ns += t1 - t0;
        out->teardown_ns += t2 - t1;
    }
    return 0;
}
