/* A program that runs once per user: a second start says who runs and
 * exits 1. The lock goes with the process, however it ends.
 *
 *   cc single_instance.c $(pkg-config --cflags --libs abslock) -o single_instance
 *   ./single_instance & ./single_instance   # the second: "already running: ..."
 */
#include <stdio.h>
#include <unistd.h>

#include <abslock.h>

int main(void) {
    abslock_guard *guard;
    int rc = abslock_acquire("single-instance-example", 0, 0, &guard);
    if (rc == ABSLOCK_CONFLICT) {
        fprintf(stderr, "already running: %s\n", abslock_last_error());
        return 1;
    }
    if (rc != ABSLOCK_OK) {
        fprintf(stderr, "single_instance: %s\n", abslock_last_error());
        return rc;
    }
    printf("running as %ld\n", (long)getpid());
    fflush(stdout);
    sleep(2); /* the work */
    abslock_release(guard);
    return 0;
}
