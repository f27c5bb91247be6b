/* cJSON's allocation hooks are set once, at startup, before any thread:
 * cJSON_InitHooks() rewrites one process-wide struct that every cJSON call
 * reads without a lock, so setting it on the first request (as the server
 * once did) raced with whatever other thread was parsing or printing.
 * Linked with -Wl,--wrap=cJSON_InitHooks: every call is seen, with the
 * number of threads alive at that moment. Five threads then answer reviews
 * at once; the hooks must not be touched again, and the answers must be the
 * same as a single thread's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "webhook/admission.h"
#include "webhook/config.h"

void __real_cJSON_InitHooks(cJSON_Hooks *hooks);

static atomic_int init_calls, threads_at_init;
static atomic_bool serving, init_while_serving;
static struct injector_config cfg;

static int count_threads(void)
{
        DIR *d = opendir("/proc/self/task");
        int n = 0;
        if (!d)
                return -1;
        for (struct dirent *e; (e = readdir(d));)
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

void __wrap_cJSON_InitHooks(cJSON_Hooks *hooks)
{
        atomic_fetch_add(&init_calls, 1);
        atomic_store(&threads_at_init, count_threads());
        if (atomic_load(&serving))
                atomic_store(&init_while_serving, true);
        __real_cJSON_InitHooks(hooks);
}

static const char review[] =
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
    "\"uid\":\"u-1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
    "\"namespace\":\"ns\",\"operation\":\"CREATE\",\"object\":{\"metadata\":{\"labels\":"
    "{\"kubevirt.io\":\"virt-launcher\"}},\"spec\":{\"containers\":[{\"name\":\"compute\"}]"
    "}}}}";
/* 300 answers; returns the first (malloc'd) if all were the same. */
static void *answer_reviews(void *arg)
{
        (void)arg;
        char *first = NULL;
        for (int i = 0; i < 300; i++) {
                struct admission_result r;
                bool same =
                    admission_handle(&cfg, ADMIT_PODS, review, strlen(review), 0, &r) == 0 &&
                    r.body && (!first || strcmp(r.body, first) == 0);
                if (same && !first)
                        first = strdup(r.body);
                admission_result_done(&r);
                if (!same || !first) {
                        free(first);
                        return NULL;
                }
        }
        return first;
}

static void test_hooks_set_once_at_startup(void **state)
{
        (void)state;
        /* What main() does first, with only this thread alive. */
        assert_int_equal(admission_init(), 0);
        assert_int_equal(injector_config_load(&cfg, NULL, NULL), 0);

        /* The very first request comes with five threads at once. */
        atomic_store(&serving, true);
        pthread_t t[4];
        for (size_t i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&t[i], NULL, answer_reviews, NULL), 0);
        char *mine = answer_reviews(NULL);
        assert_non_null(mine);
        assert_non_null(strstr(mine, "\"patchType\":\"JSONPatch\""));
        for (size_t i = 0; i < 4; i++) {
                char *theirs = NULL;
                pthread_join(t[i], (void **)&theirs);
                assert_non_null(theirs);
                assert_string_equal(theirs, mine);
                free(theirs);
        }
        free(mine);
        atomic_store(&serving, false);

        assert_false(init_while_serving);
        assert_int_equal(init_calls, 1);
        assert_int_equal(threads_at_init, 1);
        /* A second call (another entry point) changes nothing. */
        assert_int_equal(admission_init(), 0);
        assert_int_equal(init_calls, 1);
        injector_config_done(&cfg);
}

int main(void)
{
        log_set_level(LOG_WARNING);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_hooks_set_once_at_startup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
