/*
 * The C competitors of the benchmark, called from src/ffi.rs.
 *
 * Every timed loop lives entirely on this side of the FFI boundary, so what is measured is the
 * library itself, not the call into it. Each competitor keeps one context (or ring) for the whole
 * run, opened with *_open and closed with *_close outside any timed region.
 *
 * Loops return 0 on success or a negated errno; a completion with an unexpected result counts as
 * -EIO, so every competitor checks the same things.
 *
 * Prefixes: la_ (libaio), fl_ (the floor: raw io_submit plus user-space ring reaping, written
 * for nothing but speed), ur_ (io_uring through liburing), sy_ (plain synchronous calls).
 */
#ifndef LINUX_AIO_BENCH_H
#define LINUX_AIO_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* The largest POLL batch and read queue depth any scenario uses. */
#define BENCH_MAX_BATCH 128

/* Size of every read. */
#define BENCH_READ_SIZE 4096

/*
 * A random-read job: keep `qd` reads of BENCH_READ_SIZE bytes in flight on `fd` until `total`
 * have completed. Read i goes to offsets[(start + i) & mask] (mask + 1 is a power of two), into
 * buffer `slot` (bufs + slot * BENCH_READ_SIZE). Every round waits for at least one completion,
 * then resubmits as many reads as completed, in one call: the same pattern for every competitor.
 */
struct reads_job {
    int fd;
    int qd;
    unsigned char *bufs;
    const uint64_t *offsets;
    size_t mask;
    size_t start;
    long total;
};

/* Setup/teardown timings: nanoseconds summed over `iterations`. */
struct setup_times {
    uint64_t setup_ns;
    uint64_t teardown_ns;
};

void *la_open(unsigned depth);
void la_close(void *h);
long la_poll(void *h, int efd, int batch, long rounds);
long la_reads(void *h, const struct reads_job *job);
long la_setup_teardown(unsigned depth, long iterations, struct setup_times *out);

void *fl_open(unsigned depth);
void fl_close(void *h);
long fl_poll(void *h, int efd, int batch, long rounds);
long fl_reads(void *h, const struct reads_job *job);
long fl_setup_teardown(unsigned depth, long iterations, struct setup_times *out);

void *ur_open(unsigned entries);
void ur_close(void *h);
long ur_poll(void *h, int efd, int batch, long rounds);
long ur_reads(void *h, const struct reads_job *job);
long ur_setup_teardown(unsigned entries, long iterations, struct setup_times *out);

long sy_pread(const struct reads_job *job);

/* Monotonic clock in nanoseconds, for the setup/teardown loops. */
uint64_t bench_now_ns(void);

#endif
