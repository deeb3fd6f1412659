/* A C program on libabslock, for tests/c.rs:
 *   lockctl hold NAME              take NAME, say "held PID", wait for a signal
 *   lockctl take NAME TIMEOUT_MS [FLAGS]
 *                                  take NAME and let it go; exit with the code,
 *                                  abslock_last_error() on stderr
 *   lockctl holder NAME            say the holder's pid (0: free)
 *   lockctl interrupt NAME         take NAME (5 s, ABSLOCK_INTERRUPTIBLE) with a
 *                                  SIGALRM handler (no SA_RESTART) due in 1 s
 *   lockctl twice NAME             take NAME twice in one process: say the second code
 *   lockctl fork NAME              take NAME, fork, both let go: say both codes
 *   lockctl null                   NULL arguments: say each code
 *   lockctl codes                  say the header's codes, "NAME=VALUE"
 */
#define _DEFAULT_SOURCE /* usleep */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <abslock.h>

static void on_alarm(int sig) { (void)sig; }

static int take(const char *name, unsigned flags, long long timeout_ms) {
    abslock_guard *guard = NULL;
    int rc = abslock_acquire(name, flags, timeout_ms, &guard);
    if (rc == ABSLOCK_OK) {
        if (guard == NULL || abslock_last_error()[0] != '\0')
            return 99;
        abslock_release(guard);
    } else {
        if (guard != NULL)
            return 98;
        fprintf(stderr, "%s\n", abslock_last_error());
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "hold") == 0) {
        abslock_guard *guard = NULL;
        int rc = abslock_acquire(argv[2], 0, ABSLOCK_FOREVER, &guard);
        if (rc != ABSLOCK_OK) {
            fprintf(stderr, "%s\n", abslock_last_error());
            return rc;
        }
        printf("held %ld\n", (long)getpid());
        fflush(stdout);
        pause();
        abslock_release(guard);
        return 0;
    }
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "take") == 0) {
        unsigned flags = argc == 5 ? (unsigned)strtoul(argv[4], NULL, 0) : 0u;
        return take(argv[2], flags, strtoll(argv[3], NULL, 10));
    }
    if (argc == 3 && strcmp(argv[1], "holder") == 0) {
        pid_t pid = 12345;
        int rc = abslock_holder(argv[2], 0, &pid);
        if (rc != ABSLOCK_OK) {
            fprintf(stderr, "%s\n", abslock_last_error());
            return rc;
        }
        printf("%ld\n", (long)pid);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "interrupt") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
        alarm(1);
        /* Not forever: a wait the signal failed to end fails the test. */
        return take(argv[2], ABSLOCK_INTERRUPTIBLE, 5000);
    }
    if (argc == 3 && strcmp(argv[1], "twice") == 0) {
        abslock_guard *first = NULL, *second = NULL;
        int rc = abslock_acquire(argv[2], 0, 0, &first);
        if (rc != ABSLOCK_OK)
            return rc;
        rc = abslock_acquire(argv[2], 0, 0, &second);
        printf("%d %s\n", rc, abslock_last_error());
        abslock_release(first);
        return second == NULL ? 0 : 98;
    }
    if (argc == 3 && strcmp(argv[1], "fork") == 0) {
        /* The child lets go of its copy, finds the parent still holding,
         * and outlives the parent's release, which frees the name. */
        abslock_guard *guard = NULL;
        int rc = abslock_acquire(argv[2], 0, 0, &guard), status;
        pid_t child;
        if (rc != ABSLOCK_OK)
            return rc;
        child = fork();
        if (child == 0) {
            abslock_release(guard);
            rc = take(argv[2], 0, 0);
            usleep(500000);
            _exit(rc == ABSLOCK_CONFLICT ? 0 : 10 + rc);
        }
        usleep(200000);
        abslock_release(guard);
        rc = take(argv[2], 0, 0);
        waitpid(child, &status, 0);
        printf("parent %d child %d\n", rc, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "null") == 0) {
        /* Each call before its abslock_last_error(): C leaves the order
         * of a function's arguments open. */
        abslock_guard *guard = NULL;
        pid_t pid;
        int rc;
        rc = abslock_acquire(NULL, 0, 0, &guard);
        printf("name %d %s\n", rc, abslock_last_error());
        rc = abslock_acquire("x", 0, 0, NULL);
        printf("guard %d %s\n", rc, abslock_last_error());
        rc = abslock_holder("x", 0, NULL);
        printf("pid %d %s\n", rc, abslock_last_error());
        rc = abslock_acquire("x", 0x100u, 0, &guard);
        printf("flags %d %s\n", rc, abslock_last_error());
        rc = abslock_acquire("x", 0, -2, &guard);
        printf("timeout %d %s\n", rc, abslock_last_error());
        rc = abslock_holder("x", ABSLOCK_INTERRUPTIBLE, &pid);
        printf("holder-flags %d %s\n", rc, abslock_last_error());
        abslock_release(NULL);
        return guard == NULL ? 0 : 98;
    }
    if (argc == 2 && strcmp(argv[1], "codes") == 0) {
#define SAY(c) printf("%s=%d\n", #c, c)
        SAY(ABSLOCK_OK); SAY(ABSLOCK_CONFLICT); SAY(ABSLOCK_SQUATTED);
        SAY(ABSLOCK_USAGE); SAY(ABSLOCK_NOINPUT); SAY(ABSLOCK_UNAVAILABLE);
        SAY(ABSLOCK_OSERR); SAY(ABSLOCK_CANTCREAT); SAY(ABSLOCK_TEMPFAIL);
        SAY(ABSLOCK_PROTOCOL); SAY(ABSLOCK_NOPERM); SAY(ABSLOCK_INTERRUPTED);
        printf("version=%s\n", abslock_version());
        return 0;
    }
    fprintf(stderr, "usage: lockctl hold|take|holder|interrupt|null|codes ...\n");
    return 64;
}
