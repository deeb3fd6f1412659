/*
 * abslock.h: single-instance locks on Linux abstract socket names, for C.
 *
 * A lock is a name in the kernel's abstract socket namespace: it exists
 * while a descriptor of the socket is open, and the kernel frees it the
 * moment the last one closes, whatever ends the process (exit, crash,
 * SIGKILL; docs/semantics.md states each rule with the test that shows
 * it). Nothing is left on disk. Names are written as the `abslock`
 * command takes them, and the same name is the same lock for the command,
 * the Rust crate, the Python package and this library:
 *
 *   "job"         a per-user name (also guarded by a file in the user's
 *                 runtime directory, so another network namespace cannot
 *                 take it a second time);
 *   "job" with ABSLOCK_SYSTEM   the one system-wide name;
 *   "@ADDRESS"    a raw abstract address, as `ss -xlp` shows it;
 *   "file:PATH"   a flock(2) lock file, as flock(1) takes it (also a path
 *                 starting with "/", "./" or "../").
 *
 * Every function returns one of the ABSLOCK_* codes below: the numbers
 * the `abslock` command exits with for the same case. After a failure,
 * abslock_last_error() says what went wrong in one line.
 *
 * Link with -labslock (pkg-config --cflags --libs abslock). Taking a lock
 * starts one background thread per process, which answers other
 * processes' questions about the holder (`abslock status NAME`).
 *
 * After fork(), the child shares the parent's locks: a name stays held
 * until both have let go of it, by abslock_release() (each of its own
 * copy), exit or exec (the descriptors are close-on-exec).
 */
#ifndef ABSLOCK_H
#define ABSLOCK_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes, shared with the `abslock` command's exit codes. */
#define ABSLOCK_OK 0
/* Held by another process (abslock_acquire without waiting, or the
 * timeout ran out). */
#define ABSLOCK_CONFLICT 1
/* Held by a user the lock does not trust (the caller's uid and root are
 * trusted): someone may be squatting the name. */
#define ABSLOCK_SQUATTED 3
/* A bad name, flag, timeout or argument (EX_USAGE). */
#define ABSLOCK_USAGE 64
/* A lock file cannot be opened (EX_NOINPUT, as flock(1) exits). */
#define ABSLOCK_NOINPUT 66
/* The holder could not be asked (EX_UNAVAILABLE). */
#define ABSLOCK_UNAVAILABLE 69
/* A system call failed (EX_OSERR). */
#define ABSLOCK_OSERR 71
/* A lock file on a read-only or full file system (EX_CANTCREAT). */
#define ABSLOCK_CANTCREAT 73
/* The holder is shutting down or did not answer in time (EX_TEMPFAIL). */
#define ABSLOCK_TEMPFAIL 75
/* The holder's answer broke the protocol (EX_PROTOCOL). */
#define ABSLOCK_PROTOCOL 76
/* Not permitted, or a lock file path another user could redirect
 * (EX_NOPERM). */
#define ABSLOCK_NOPERM 77
/* A signal ended an ABSLOCK_INTERRUPTIBLE wait; nothing was taken. */
#define ABSLOCK_INTERRUPTED 130

/* Flags. */
/* The system-wide name instead of the caller's per-user one. */
#define ABSLOCK_SYSTEM 0x1u
/* A signal whose handler was installed without SA_RESTART ends the wait
 * with ABSLOCK_INTERRUPTED, as EINTR ends a system call (signal(7));
 * without this flag the wait goes on after the handler has run. */
#define ABSLOCK_INTERRUPTIBLE 0x2u

/* A timeout that never runs out. */
#define ABSLOCK_FOREVER (-1LL)

/* A held lock. Opaque; released by abslock_release(). */
typedef struct abslock_guard abslock_guard;

/*
 * Takes the lock NAME. timeout_ms: 0 to try once, ABSLOCK_FOREVER to wait
 * as long as it takes, otherwise the most milliseconds to wait (another
 * negative value is ABSLOCK_USAGE). Waiting
 * sleeps in the kernel and wakes when the holder lets go; waiters on a
 * socket name are served in the order they came.
 *
 * A lock is held by a process, not a thread: a second abslock_acquire of
 * a held name in the same process is a conflict like any other.
 *
 * On ABSLOCK_OK, *guard holds the lock until abslock_release(*guard).
 * Otherwise *guard is left alone: ABSLOCK_CONFLICT (held, or timed out;
 * abslock_last_error() names the holder), ABSLOCK_SQUATTED, or another
 * code above.
 */
int abslock_acquire(const char *name, unsigned flags, long long timeout_ms,
                    abslock_guard **guard);

/* Lets the lock go and frees the guard; any thread may. NULL is ignored. */
void abslock_release(abslock_guard *guard);

/*
 * Who holds NAME (flags: ABSLOCK_SYSTEM or 0). On ABSLOCK_OK, *pid is the
 * holder's process ID; 0 if nobody holds it; -1 if it is held by a
 * process this one cannot see (another PID namespace).
 */
int abslock_holder(const char *name, unsigned flags, pid_t *pid);

/*
 * What the last failing call of this thread went wrong with, as one line
 * of text (anything another process controls in it is escaped); "" after
 * a call that succeeded. Valid until this thread's next abslock call.
 */
const char *abslock_last_error(void);

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *abslock_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ABSLOCK_H */
