/* qd32.c: 4 KiB random aio_read at queue depth 32 for a few seconds, through whichever POSIX AIO
 * the process has (glibc's, or libposixaio preloaded). Prints one line:
 *   <label> <buffered|direct> iops <n> cpu_us_per_read <n> reads <n> seconds <n>
 * Usage: qd32 <label> <file> <buffered|direct> [seconds]   (the file: a multiple of 4 KiB)
 * CPU is the process's user + system time (glibc's worker threads included). */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { QD = 32, BS = 4096 };

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s <label> <file> <buffered|direct> [seconds]\n", argv[0]);
		return 2;
	}
	int direct = !strcmp(argv[3], "direct");
	double seconds = argc > 4 ? atof(argv[4]) : 3;
	int fd = open(argv[2], O_RDONLY | (direct ? O_DIRECT : 0));
	if (fd < 0) {
		perror("open");
		return 1;
	}
	struct stat st;
	fstat(fd, &st);
	uint64_t blocks = (uint64_t)st.st_size / BS;
	static struct aiocb cbs[QD];
	const struct aiocb *list[QD];
	unsigned char *bufs;
	if (posix_memalign((void **)&bufs, BS, (size_t)QD * BS))
		return 1;
	for (int i = 0; i < QD; i++) {
		memset(&cbs[i], 0, sizeof cbs[i]);
		cbs[i].aio_fildes = fd;
		cbs[i].aio_buf = bufs + (size_t)i * BS;
		cbs[i].aio_nbytes = BS;
		cbs[i].aio_offset = (off_t)(next() % blocks) * BS;
		cbs[i].aio_sigevent.sigev_notify = SIGEV_NONE;
		list[i] = &cbs[i];
		if (aio_read(&cbs[i])) {
			perror("aio_read");
			return 1;
		}
	}
	double t0 = now(), c0 = cpu(), end = t0 + seconds;
	uint64_t done = 0;
	for (;;) {
		if (aio_suspend(list, QD, NULL) && errno != EINTR) {
			perror("aio_suspend");
			return 1;
		}
		int stop = now() >= end;
		for (int i = 0; i < QD; i++) {
			if (!list[i] || aio_error(&cbs[i]) == EINPROGRESS)
				continue; /* retired (its status already retrieved), or still running */
			int err = aio_error(&cbs[i]);
			errno = 0;
			ssize_t n = aio_return(&cbs[i]);
			if (n != BS) {
				fprintf(stderr, "read %d at %lld: aio_error %d, aio_return %zd (errno %d)\n",
					i, (long long)cbs[i].aio_offset, err, n, errno);
				return 1;
			}
			done++;
			if (stop) {
				list[i] = NULL;
				continue;
			}
			cbs[i].aio_offset = (off_t)(next() % blocks) * BS;
			if (aio_read(&cbs[i])) {
				perror("aio_read");
				return 1;
			}
		}
		if (stop) {
			int left = 0;
			for (int i = 0; i < QD; i++)
				left += list[i] != NULL;
			if (!left)
				break;
		}
	}
	double t = now() - t0, c = cpu() - c0;
	printf("%s %s iops %.0f cpu_us_per_read %.2f reads %llu seconds %.2f\n", argv[1], argv[3],
	       done / t, c * 1e6 / done, (unsigned long long)done, t);
	return 0;
}
