/*
 * The synchronous baseline: one pread(2) per request, queue depth 1 by nature. Also the clock
 * the C setup/teardown loops share.
 */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

long sy_pread(const struct reads_job *job)
{
    size_t next = job->start;
    for (long i = 0; i < job->total; i++) {
        ssize_t n = pread(job->fd, job->bufs, BENCH_READ_SIZE,
                          (off_t)job->offsets[next++ & job->mask]);
        if (n < 0)
            return -errno;
        if (n != BENCH_READ_SIZE)
            return -EIO;
    }
    return 0;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
