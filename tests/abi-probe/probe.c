/* The C compiler's view of the kernel ABI that linux-aio declares in Rust: one table entry per
 * size, alignment, field offset, syscall number and constant. Each entry's name is the C
 * expression itself, so tests/layout.rs builds the same strings from Rust. */
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <linux/time_types.h>
#include <asm/unistd.h>
#include <stddef.h>

/* Not UAPI: these two are private to the kernel's fs/aio.c, written out here as the kernel
 * declares them, so that the C compiler's padding rules are compared with Rust's repr(C). */
struct aio_ring {
	unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};
struct __aio_sigset {
	const void *sigmask;
	size_t sigsetsize;
};

struct abi_probe_entry {
	const char *name;
	long long value;
};

#define E(expr) { #expr, (long long)(expr) }
#define LAYOUT(T) E(sizeof(struct T)), E(_Alignof(struct T))
#define FIELD(T, f) E(offsetof(struct T, f))

const struct abi_probe_entry abi_probe_table[] = {
	LAYOUT(iocb),
	FIELD(iocb, aio_data),
	FIELD(iocb, aio_key),
	FIELD(iocb, aio_rw_flags),
	FIELD(iocb, aio_lio_opcode),
	FIELD(iocb, aio_reqprio),
	FIELD(iocb, aio_fildes),
	FIELD(iocb, aio_buf),
	FIELD(iocb, aio_nbytes),
	FIELD(iocb, aio_offset),
	FIELD(iocb, aio_reserved2),
	FIELD(iocb, aio_flags),
	FIELD(iocb, aio_resfd),

	LAYOUT(io_event),
	FIELD(io_event, data),
	FIELD(io_event, obj),
	FIELD(io_event, res),
	FIELD(io_event, res2),

	LAYOUT(__kernel_timespec),
	FIELD(__kernel_timespec, tv_sec),
	FIELD(__kernel_timespec, tv_nsec),

	LAYOUT(aio_ring),
	FIELD(aio_ring, id),
	FIELD(aio_ring, nr),
	FIELD(aio_ring, head),
	FIELD(aio_ring, tail),
	FIELD(aio_ring, magic),
	FIELD(aio_ring, compat_features),
	FIELD(aio_ring, incompat_features),
	FIELD(aio_ring, header_length),

	LAYOUT(__aio_sigset),
	FIELD(__aio_sigset, sigmask),
	FIELD(__aio_sigset, sigsetsize),

	E(sizeof(aio_context_t)),

	E(__NR_io_setup),
	E(__NR_io_destroy),
	E(__NR_io_submit),
	E(__NR_io_cancel),
	E(__NR_io_getevents),
	E(__NR_io_pgetevents),
	E(__NR_read),
	E(__NR_write),
	E(__NR_close),
	E(__NR_pipe2),
	E(__NR_munmap),
	E(__NR_copy_file_range),
#ifdef __NR_mmap /* not on arm EABI */
	E(__NR_mmap),
#endif
#ifdef __NR_mmap2 /* the 32-bit architectures */
	E(__NR_mmap2),
#endif
#ifdef __NR_io_pgetevents_time64 /* the 32-bit architectures, with the 32-bit timespec */
	E(__NR_io_pgetevents_time64),
	LAYOUT(__kernel_old_timespec),
	FIELD(__kernel_old_timespec, tv_sec),
	FIELD(__kernel_old_timespec, tv_nsec),
#endif

	E(IOCB_CMD_PREAD),
	E(IOCB_CMD_PWRITE),
	E(IOCB_CMD_FSYNC),
	E(IOCB_CMD_FDSYNC),
	E(IOCB_CMD_POLL),
	E(IOCB_CMD_NOOP),
	E(IOCB_CMD_PREADV),
	E(IOCB_CMD_PWRITEV),
	E(IOCB_FLAG_RESFD),
	E(IOCB_FLAG_IOPRIO),
	E(RWF_HIPRI),
	E(RWF_DSYNC),
	E(RWF_SYNC),
	E(RWF_NOWAIT),
	E(RWF_APPEND),
	E(RWF_SUPPORTED),

	{ NULL, 0 },
};
