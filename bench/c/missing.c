/*
 * Stand-ins for a C competitor whose library headers were not installed when the benchmark was
 * built (build.rs defines MISSING_LIBAIO and/or MISSING_LIBURING), so that the workspace still
 * builds. Opening such a competitor fails; the report shows it as skipped and says which apt
 * package to install (cargo xtask bench refuses to run without both).
 */
#include <errno.h>
#include <stddef.h>

#include "bench.h"

#ifdef MISSING_LIBAIO
void *la_open(unsigned depth)
{
    (void)depth;
    errno = ENOSYS;
    return NULL;
}
void la_close(void *h) { (void)h; }
long la_poll(void *h, int efd, int batch, long rounds)
{
    (void)h, (void)efd, (void)batch, (void)rounds;
    return -ENOSYS;
}
long la_reads(void *h, const struct reads_job *job)
{
    (void)h, (void)job;
    return -ENOSYS;
}
long la_setup_teardown(unsigned depth, long iterations, struct setup_times *out)
{
    (void)depth, (void)iterations, (void)out;
    return -ENOSYS;
}
#endif

#ifdef MISSING_LIBURING
void *ur_open(unsigned entries)
{
    (void)entries;
    errno = ENOSYS;
    return NULL;
}
void ur_close(void *h) { (void)h; }
long ur_poll(void *h, int efd, int batch, long rounds)
{
    (void)h, (void)efd, (void)batch, (void)rounds;
    return -ENOSYS;
}
long ur_reads(void *h, const struct reads_job *job)
{
    (void)h, (void)job;
    return -ENOSYS;
}
long ur_setup_teardown(unsigned entries, long iterations, struct setup_times *out)
{
    (void)entries, (void)iterations, (void)out;
    return -ENOSYS;
}
#endif
