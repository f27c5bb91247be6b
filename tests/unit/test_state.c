/* Unit tests for provision/base/state.c: the state file on disk (mode, atomic
 * rewrite, reload), run ids and this-run ownership, nodes, a corrupt or
 * foreign file, removal, and parallel writers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/fixture_tests.h"

#include "common/macro.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"

static char base[PATH_MAX];
static char dir[PATH_MAX + 32];
static char file[PATH_MAX + 64];

static int setup(void **state)
{
        (void)state;
        strcpy(base, "/tmp/test_state.XXXXXX");
        if (!mkdtemp(base))
                return -1;
        /* Nested and not there yet: state_open must create it. */
        snprintf(dir, sizeof(dir), "%s/lib/vgpuenv/c1", base);
        snprintf(file, sizeof(file), "%s/state.json", dir);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        return rm_rf(base);
}

static cJSON *read_json(const char *path)
{
        _cleanup_free_ char *text = NULL;

        assert_int_equal(read_full_file(path, &text, NULL), 0);
        cJSON *j = cJSON_Parse(text);
        assert_non_null(j);
        return j;
}

/* Run f with stderr captured; returns what was logged. */
static char *capture_stderr(int (*f)(void *), void *arg, int *ret)
{
        char tmpl[] = "/tmp/test_state_err.XXXXXX";
        int fd = mkstemp(tmpl), saved = dup(STDERR_FILENO);
        char *out = NULL;

        assert_true(fd >= 0 && saved >= 0);
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
        *ret = f(arg);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);
        assert_int_equal(read_full_file(tmpl, &out, NULL), 0);
        unlink(tmpl);
        return out;
}

static void test_new_state_and_resources(void **state)
{
        (void)state;
        struct state s;
        struct stat st;

        assert_int_equal(state_open(&s, dir, "c1", "local"), 0);
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0711);
        /* Nothing is written until something is recorded: not up yet. */
        assert_false(file_exists(file));
        assert_int_equal(state_require_up(dir, "c1", "c1.yaml", true), -ENOENT);
        assert_int_equal(strlen(s.run_id), 32);
        assert_int_equal(strspn(s.run_id, "0123456789abcdef"), 32);

        assert_int_equal(state_add_resource(&s, "network", "vgpuenv-c1"), 0);
        assert_int_equal(state_add_resource(&s, "domain", "c1-node1"), 0);
        assert_int_equal(state_add_resource(&s, "domain", "c1-node1"), 0); /* idempotent */
        assert_true(state_has_resource(&s, "domain", "c1-node1"));
        assert_false(state_has_resource(&s, "domain", "c1-node2"));
        assert_false(state_has_resource(&s, "volume", "c1-node1"));
        assert_true(state_resource_is_ours_this_run(&s, "domain", "c1-node1"));

        assert_int_equal(stat(file, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(state_require_up(dir, "c1", "c1.yaml", true), 0);
        cJSON *j = read_json(file);
        assert_string_equal(cJSON_GetObjectItem(j, "cluster")->valuestring, "c1");
        assert_string_equal(cJSON_GetObjectItem(j, "provider")->valuestring, "local");
        assert_string_equal(cJSON_GetObjectItem(j, "run")->valuestring, s.run_id);
        cJSON *res = cJSON_GetObjectItem(j, "resources");
        assert_int_equal(cJSON_GetArraySize(res), 2);
        cJSON *r1 = cJSON_GetArrayItem(res, 1);
        assert_string_equal(cJSON_GetObjectItem(r1, "kind")->valuestring, "domain");
        assert_string_equal(cJSON_GetObjectItem(r1, "name")->valuestring, "c1-node1");
        assert_string_equal(cJSON_GetObjectItem(r1, "run")->valuestring, s.run_id);
        cJSON_Delete(j);

        /* Atomic writes leave no temporary files behind. */
        DIR *d = opendir(dir);
        unsigned entries = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        entries++;
        closedir(d);
        assert_int_equal(entries, 1);
        state_done(&s);
}

static void test_reopen_other_run(void **state)
{
        (void)state;
        struct state s;
        _cleanup_free_ char *first_run = NULL;

        assert_int_equal(state_open(&s, dir, "c1", "local"), 0);
        assert_int_equal(state_add_resource(&s, "domain", "c1-node1"), 0);
        first_run = strdup(s.run_id);
        state_done(&s);

        assert_int_equal(state_open(&s, dir, "c1", "local"), 0);
        assert_string_not_equal(s.run_id, first_run);
        assert_true(state_has_resource(&s, "domain", "c1-node1"));
        /* Made by the earlier run: a rollback of this run must leave it. */
        assert_false(state_resource_is_ours_this_run(&s, "domain", "c1-node1"));
        /* Re-adding does not steal it either. */
        assert_int_equal(state_add_resource(&s, "domain", "c1-node1"), 0);
        assert_false(state_resource_is_ours_this_run(&s, "domain", "c1-node1"));
        assert_int_equal(state_add_resource(&s, "domain", "c1-node2"), 0);
        assert_true(state_resource_is_ours_this_run(&s, "domain", "c1-node2"));

        assert_int_equal(state_drop_resource(&s, "domain", "c1-node1"), 0);
        assert_int_equal(state_drop_resource(&s, "domain", "never-there"), 0);
        state_done(&s);

        assert_int_equal(state_open(&s, dir, "c1", "local"), 0);
        assert_false(state_has_resource(&s, "domain", "c1-node1"));
        assert_true(state_has_resource(&s, "domain", "c1-node2"));
        state_done(&s);
}

/* A node reached as root with the cluster's one identity. */
static struct node_target root_node(const char *name, const char *host, unsigned port,
                                    const char *host_key)
{
        return (struct node_target){.name = name,
                                    .host = host,
                                    .port = port,
                                    .user = "root",
                                    .identity = "/k/id",
                                    .host_key = host_key};
}

static void test_nodes(void **state)
{
        (void)state;
        struct state s;
        struct node_target *t = NULL;
        size_t n = 0;

        assert_int_equal(state_open(&s, dir, "c1", "local"), 0);
        assert_int_equal(state_get_nodes(&s, &t, &n), 0);
        assert_int_equal(n, 0);
        free(t);

        struct node_target a = root_node("c1-node1", "192.168.123.10", 22, "ssh-ed25519 AAAA1");
        struct node_target b = root_node("c1-node2", "192.168.123.11", 2222, "ssh-ed25519 AAAA2");
        assert_int_equal(state_set_node(&s, &a), 0);
        assert_int_equal(state_set_node(&s, &b), 0);
        /* node setup adds members of its own; re-recording keeps them. */
        cJSON *n1 = cJSON_GetArrayItem(cJSON_GetObjectItem(s.root, "nodes"), 0);
        cJSON_AddStringToObject(n1, "family", "debian");
        a.host_key = "ssh-ed25519 CHANGED";
        assert_int_equal(state_set_node(&s, &a), 0);
        state_done(&s);

        assert_int_equal(state_open(&s, dir, "c1", "local"), 0);
        assert_int_equal(state_get_nodes(&s, &t, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(t[0].name, "c1-node1");
        assert_string_equal(t[0].host, "192.168.123.10");
        assert_int_equal(t[0].port, 22);
        assert_string_equal(t[0].user, "root");
        assert_string_equal(t[0].identity, "/k/id");
        assert_string_equal(t[0].host_key, "ssh-ed25519 CHANGED");
        assert_string_equal(t[1].name, "c1-node2");
        assert_int_equal(t[1].port, 2222);
        assert_string_equal(t[1].host_key, "ssh-ed25519 AAAA2");
        n1 = cJSON_GetArrayItem(cJSON_GetObjectItem(s.root, "nodes"), 0);
        assert_string_equal(cJSON_GetObjectItem(n1, "family")->valuestring, "debian");
        free(t);

        cJSON *pd = state_provider_data(&s);
        assert_non_null(pd);
        cJSON_AddStringToObject(pd, "network", "vgpuenv-c1");
        assert_int_equal(state_save(&s), 0);
        state_done(&s);
        cJSON *j = read_json(file);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(j, "provider_data"), "network")->valuestring,
            "vgpuenv-c1");
        cJSON_Delete(j);
}

static int open_c1_local(void *arg)
{
        struct state *s = arg;
        return state_open(s, dir, "c1", "local");
}

static int open_c1_kcli(void *arg)
{
        struct state *s = arg;
        return state_open(s, dir, "c1", "kcli");
}

static void test_corrupt_and_foreign(void **state)
{
        (void)state;
        struct state s;
        int r;

        assert_int_equal(mkdir_p(dir, 0700), 0);
        assert_int_equal(write_file_atomic(file, "{\"cluster\": \"c1\", \"resou", 25, 0600), 0);
        _cleanup_free_ char *err = capture_stderr(open_c1_local, &s, &r);
        assert_int_equal(r, -EBADMSG);
        assert_non_null(strstr(err, file));
        assert_non_null(strstr(err, "is corrupt"));
        state_done(&s);

        assert_int_equal(write_file_atomic(file, "{\"resources\": 3}", 16, 0600), 0);
        free(err);
        err = capture_stderr(open_c1_local, &s, &r);
        assert_int_equal(r, -EBADMSG);
        assert_non_null(strstr(err, "is corrupt"));
        state_done(&s);

        static const char local_state[] =
            "{\"cluster\":\"c1\",\"provider\":\"local\",\"resources\":[]}";
        assert_int_equal(write_file_atomic(file, local_state, strlen(local_state), 0600), 0);
        free(err);
        err = capture_stderr(open_c1_kcli, &s, &r);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "cluster 'c1' was brought up with provider local"));
        state_done(&s);
        unlink(file);
}

static void test_remove(void **state)
{
        (void)state;
        struct state s;

        assert_int_equal(state_open(&s, dir, "c1", "local"), 0);
        assert_int_equal(state_add_resource(&s, "domain", "x"), 0);
        assert_true(file_exists(file));
        assert_int_equal(state_remove(&s), 0);
        assert_false(file_exists(file));
        /* The directory was empty after that, so it is gone too. */
        assert_false(file_exists(dir));
        state_done(&s);
}

struct writer {
        struct state *s;
        int id;
};

static void *writer_thread(void *p)
{
        struct writer *w = p;

        for (int i = 0; i < 25; i++) {
                char name[32];
                snprintf(name, sizeof(name), "vol-%d-%d", w->id, i);
                if (state_add_resource(w->s, "volume", name) < 0)
                        return (void *)1;
        }
        return NULL;
}

static void test_parallel_writers(void **state)
{
        (void)state;
        struct state s;
        pthread_t th[4];
        struct writer w[4];

        assert_int_equal(state_open(&s, dir, "c1", "local"), 0);
        for (int i = 0; i < 4; i++) {
                w[i] = (struct writer){&s, i};
                assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &w[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                void *rv;
                pthread_join(th[i], &rv);
                assert_null(rv);
        }
        state_done(&s);
        cJSON *j = read_json(file);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "resources")), 100);
        cJSON_Delete(j);
}

int main(void)
{
        return run_fixture_tests(test_new_state_and_resources, test_reopen_other_run, test_nodes,
                                 test_corrupt_and_foreign, test_remove, test_parallel_writers);
}
