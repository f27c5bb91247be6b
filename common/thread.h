/* Ending a worker thread that sleeps on a condition variable until a stop
 * flag is raised: the one way the webhook's background threads (the
 * admission log writer, the certificate watcher) are stopped, so the flag
 * is always set under the lock and the wake-up cannot be missed. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

/* Sets *stop under lock, signals wake and joins thread. */
void thread_stop(pthread_t thread, pthread_mutex_t *lock, pthread_cond_t *wake, bool *stop);
