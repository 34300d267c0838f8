/* The C library's view of the POSIX AIO types that libposixaio reads from its callers' memory:
 * one entry per size, alignment, field offset and constant, named by the C expression itself so
 * that tests/layout.rs builds the same strings from Rust. Compiled by build.rs for the target
 * against its C library's headers (glibc's; musl's too, as PROBE_TABLE=posix_probe_musl, where
 * musl-gcc is installed). */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>

#ifndef PROBE_TABLE
#define PROBE_TABLE posix_probe_glibc
#endif

struct posix_probe_entry {
	const char *name;
	long long value;
};

/* Named before macro expansion, so that glibc's and musl's tables use the same names. */
#define E(expr) { #expr, (long long)(expr) }
#define LAYOUT(T) { "sizeof(" #T ")", (long long)sizeof(T) }, { "_Alignof(" #T ")", (long long)_Alignof(T) }
#define FIELD(T, f) { "offsetof(" #T ", " #f ")", (long long)offsetof(T, f) }

/* glibc and musl name the private members differently; these are their common places. */
#if defined(__GLIBC__)
#define ERR __error_code
#define RET __return_value
#define RESERVED __glibc_reserved
#define PRIVATE0 __next_prio
#define PRIVATE1 __abs_prio
/* glibc 2.36 has no sigev_notify_thread_id macro yet. */
#define THREAD_ID _sigev_un._tid
#else
#define ERR __err
#define RET __ret
#define RESERVED __next
#define PRIVATE0 __td
#define PRIVATE1 __lock
#define THREAD_ID sigev_notify_thread_id
#endif

const struct posix_probe_entry PROBE_TABLE[] = {
	LAYOUT(struct aiocb),
	FIELD(struct aiocb, aio_fildes),
	FIELD(struct aiocb, aio_lio_opcode),
	FIELD(struct aiocb, aio_reqprio),
	FIELD(struct aiocb, aio_buf),
	FIELD(struct aiocb, aio_nbytes),
	FIELD(struct aiocb, aio_sigevent),
	FIELD(struct aiocb, PRIVATE0),
	FIELD(struct aiocb, PRIVATE1),
	FIELD(struct aiocb, ERR),
	FIELD(struct aiocb, RET),
	FIELD(struct aiocb, aio_offset),
	FIELD(struct aiocb, RESERVED),
#if defined(__GLIBC__)
	/* struct aiocb64: the same layout, a 64-bit offset at the same place. */
	LAYOUT(struct aiocb64),
	FIELD(struct aiocb64, aio_fildes),
	FIELD(struct aiocb64, aio_buf),
	FIELD(struct aiocb64, aio_nbytes),
	FIELD(struct aiocb64, aio_sigevent),
	FIELD(struct aiocb64, __error_code),
	FIELD(struct aiocb64, __return_value),
	FIELD(struct aiocb64, aio_offset),
	FIELD(struct aiocb64, __glibc_reserved),
	E(sizeof(((struct aiocb64 *)0)->aio_offset)),
	E(sizeof(((struct aiocb *)0)->__glibc_reserved)),
#endif
	E(sizeof(((struct aiocb *)0)->aio_offset)),

	LAYOUT(struct sigevent),
	FIELD(struct sigevent, sigev_value),
	FIELD(struct sigevent, sigev_signo),
	FIELD(struct sigevent, sigev_notify),
	FIELD(struct sigevent, sigev_notify_function),
	FIELD(struct sigevent, sigev_notify_attributes),
	FIELD(struct sigevent, THREAD_ID),
	LAYOUT(union sigval),

	LAYOUT(siginfo_t),
	FIELD(siginfo_t, si_signo),
	FIELD(siginfo_t, si_errno),
	FIELD(siginfo_t, si_code),
	FIELD(siginfo_t, si_pid),
	FIELD(siginfo_t, si_uid),
	FIELD(siginfo_t, si_value),

	E(AIO_CANCELED),
	E(AIO_NOTCANCELED),
	E(AIO_ALLDONE),
	E(LIO_READ),
	E(LIO_WRITE),
	E(LIO_NOP),
	E(LIO_WAIT),
	E(LIO_NOWAIT),
	E(SIGEV_SIGNAL),
	E(SIGEV_NONE),
	E(SIGEV_THREAD),
	E(SIGEV_THREAD_ID),
	E(SI_ASYNCIO),
	E(_NSIG),
	E(O_SYNC),
	E(O_DSYNC),
	E(EINPROGRESS),
	E(ECANCELED),
	{ 0, 0 },
};
