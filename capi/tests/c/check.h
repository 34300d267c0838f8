/* check.h: what every C test program shares, and the lines tests/capi.rs reads.
 *
 * Each program runs its checks against whichever libaio.so.1 the dynamic loader gives it
 * (ours through LD_LIBRARY_PATH, or the system's) and prints one line per check:
 *   ok <name>
 *   FAIL <name>: <what happened>
 *   skip <name>: <why>
 * plus "lib <path>" (the file io_setup came from) and, when the kernel has no AIO at all,
 * "skip all: <why>". It exits 0 unless a check failed.
 *
 * The convention under test (io_cancel(2), NOTES): a negated errno on failure, errno left
 * alone. errno is set to ERRNO_SENTINEL before every call checked with EXPECT, and must still
 * hold it afterwards, whatever the call returned. */
#ifndef CHECK_H
#define CHECK_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERRNO_SENTINEL 4242

/* Exported by libaio (both versions), but its declaration is commented out in libaio.h. */
int io_queue_wait(io_context_t ctx, struct timespec *timeout);

static int check_failures;

static void check_report(int passed, const char *name, const char *fmt, ...)
{
	if (passed) {
		printf("ok %s\n", name);
	} else {
		va_list ap;
		va_start(ap, fmt);
		printf("FAIL %s: ", name);
		vprintf(fmt, ap);
		printf("\n");
		va_end(ap);
		check_failures++;
	}
	fflush(stdout);
}

/* A condition that does not involve errno. */
#define CHECK(name, cond) check_report((cond), (name), "%s is false", #cond)

/* Calls `call` with errno set to the sentinel; it must return `want` and leave errno alone. */
#define EXPECT(name, call, want)                                                          \
	do {                                                                              \
		long want_ = (long)(want);                                                \
		errno = ERRNO_SENTINEL;                                                   \
		long got_ = (long)(call);                                                 \
		int errno_ = errno;                                                       \
		check_report(got_ == want_ && errno_ == ERRNO_SENTINEL, (name),           \
			     "%s returned %ld (want %ld), errno %d (want it untouched)", #call, \
			     got_, want_, errno_);                                        \
	} while (0)

static inline void skip(const char *name, const char *why)
{
	printf("skip %s: %s\n", name, why);
	fflush(stdout);
}

/* Prints the library in use, and a context to test with; exits (all skipped) when the kernel
 * has no AIO, e.g. under qemu-user. */
static io_context_t check_begin(int maxevents)
{
	Dl_info info;
	if (dladdr((void *)io_setup, &info) && info.dli_fname)
		printf("lib %s\n", info.dli_fname);
	io_context_t ctx = 0;
	int ret = io_setup(maxevents, &ctx);
	if (ret == -ENOSYS) {
		printf("skip all: io_setup answers ENOSYS (no kernel AIO here)\n");
		exit(0);
	}
	if (ret != 0) {
		printf("FAIL io_setup(%d): %d\n", maxevents, ret);
		exit(1);
	}
	fflush(stdout);
	return ctx;
}

static int check_end(void)
{
	return check_failures ? 1 : 0;
}

/* A temporary file holding `len` bytes of a known pattern, unlinked at once. */
static inline int pattern_file(size_t len)
{
	char path[] = "/tmp/linux-aio-capi-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(1);
	}
	unlink(path);
	unsigned char *buf = malloc(len ? len : 1);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	if (write(fd, buf, len) != (ssize_t)len) {
		perror("write");
		exit(1);
	}
	free(buf);
	return fd;
}

#endif
