/* Stopping a worker thread (see thread.h). */
#include "common/thread.h"

void thread_stop(pthread_t thread, pthread_mutex_t *lock, pthread_cond_t *wake, bool *stop)
{
        pthread_mutex_lock(lock);
        *stop = true;
        pthread_cond_signal(wake);
        pthread_mutex_unlock(lock);
        pthread_join(thread, NULL);
}
