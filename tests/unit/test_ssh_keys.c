/* Unit tests for the parts of provision/base/ssh.c that need no sshd: fingerprints
 * (a fixed vector produced by OpenSSH's ssh-keygen -lf), public key files,
 * key generation, and ssh_node_connect's refusals before any network I/O
 * (bad pinned key, missing identity) and its deadline when nothing listens.
 * The real-sshd behaviour is in tests/integration/ssh_node.sh. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "provision/base/ssh.h"

/* ssh-keygen -lf on this key prints
 * 256 SHA256:b1eC3U9oU3soJ6WwxndA+Crn1v5jxmRJ/NFMbqQRiao unit test (ED25519) */
#define KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNa6gS2w/NgpSqIIqh5m0pK8GCf9H5DogsqhaBOoQ10"
#define KEY_FP "SHA256:b1eC3U9oU3soJ6WwxndA+Crn1v5jxmRJ/NFMbqQRiao"

static char dir[PATH_MAX];

static int setup(void **state)
{
        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/vgpuenv-test-ssh-XXXXXX");
        assert_non_null(mkdtemp(dir));
        log_set_level(LOG_ERR);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        rm_rf(dir);
        return 0;
}

static char *path_in(const char *name)
{
        char *p = strdup_printf("%s/%s", dir, name);
        assert_non_null(p);
        return p;
}

static void test_fingerprint_vector(void **state)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        (void)state;
        a = ssh_fingerprint(KEY);
        assert_non_null(a);
        assert_string_equal(a, KEY_FP);
        /* A comment and surrounding blanks do not change it. */
        b = ssh_fingerprint("  " KEY " some comment\n");
        assert_non_null(b);
        assert_string_equal(b, KEY_FP);
        /* No padding, as ssh-keygen prints it. */
        assert_null(strchr(a, '='));
        c = ssh_fingerprint(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGNa6gS2w/NgpSqIIqh5m0pK8GCf9H5DogsqhaBOoQ10");
        assert_null(c); /* type and blob disagree */
}

static void test_fingerprint_rejects_garbage(void **state)
{
        (void)state;
        assert_null(ssh_fingerprint(NULL));
        assert_null(ssh_fingerprint(""));
        assert_null(ssh_fingerprint("ssh-ed25519"));
        assert_null(ssh_fingerprint("ssh-ed25519 !!!notbase64!!!"));
        assert_null(ssh_fingerprint("nonsense-type AAAA"));
}

static void test_read_pubkey(void **state)
{
        _cleanup_free_ char *good = path_in("good.pub"), *bad = path_in("bad.pub"), *pub = NULL;
        const char *text = "# a comment line\n\n   " KEY " me@host  \r\n";

        (void)state;
        assert_int_equal(write_file_atomic(good, text, strlen(text), 0644), 0);
        assert_int_equal(ssh_read_pubkey(good, &pub), 0);
        assert_string_equal(pub, KEY " me@host");

        assert_int_equal(write_file_atomic(bad, "-----BEGIN OPENSSH PRIVATE KEY-----\n", 36, 0600),
                         0);
        assert_int_equal(ssh_read_pubkey(bad, NULL), -EINVAL);
        assert_int_equal(ssh_read_pubkey("/nonexistent/key.pub", NULL), -ENOENT);
}

static void test_keygen(void **state)
{
        _cleanup_free_ char *key = path_in("id"), *pubpath = path_in("id.pub"), *pub = NULL,
                            *again = NULL, *fp1 = NULL, *fp2 = NULL;
        struct stat st;

        (void)state;
        assert_int_equal(ssh_keygen(key, "node-1 host key", &pub), 0);
        assert_true(startswith(pub, "ssh-ed25519 AAAA"));
        assert_true(endswith(pub, " node-1 host key"));
        assert_int_equal(stat(key, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(pubpath, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        assert_int_equal(ssh_read_pubkey(pubpath, &again), 0);
        assert_string_equal(again, pub);

        /* A second key at the same path replaces the first one. */
        fp1 = ssh_fingerprint(pub);
        free(pub);
        pub = NULL;
        assert_int_equal(ssh_keygen(key, NULL, &pub), 0);
        fp2 = ssh_fingerprint(pub);
        assert_non_null(fp1);
        assert_non_null(fp2);
        assert_string_not_equal(fp1, fp2);
        assert_int_equal(ssh_keygen("/nonexistent-dir/id", NULL, NULL), -ENOENT);
}

static unsigned closed_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        /* Bind a port and close it again: nothing listens there now. */
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static void test_connect_refusals(void **state)
{
        _cleanup_free_ char *id = path_in("user"), *pub = NULL;
        struct node_target t = {
            .name = "n1",
            .host = "127.0.0.1",
            .port = closed_port(),
            .user = "root",
            .identity = NULL,
            .host_key = KEY,
        };
        struct ssh_node *n = NULL;
        double start;

        (void)state;
        assert_int_equal(ssh_keygen(id, NULL, &pub), 0);

        /* Missing fields. */
        assert_int_equal(ssh_node_connect(&t, 1, &n), -EINVAL);
        t.identity = id;

        /* No pinned key, or not an ed25519 one: refused before connecting. */
        t.host_key = NULL;
        assert_int_equal(ssh_node_connect(&t, 1, &n), -EINVAL);
        t.host_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ";
        assert_int_equal(ssh_node_connect(&t, 1, &n), -EINVAL);
        t.host_key = "ssh-ed25519 garbage";
        assert_int_equal(ssh_node_connect(&t, 1, &n), -EINVAL);
        t.host_key = KEY;

        /* The identity must exist and be a private key. */
        t.identity = "/nonexistent/id";
        assert_int_equal(ssh_node_connect(&t, 1, &n), -ENOENT);
        {
                _cleanup_free_ char *p = strdup_printf("%s.pub", id);
                t.identity = p;
                assert_int_equal(ssh_node_connect(&t, 1, &n), -EINVAL);
        }
        t.identity = id;

        /* Nothing listens: -ETIMEDOUT at the deadline, not long after. */
        start = now_seconds();
        assert_int_equal(ssh_node_connect(&t, 0.8, &n), -ETIMEDOUT);
        assert_true(now_seconds() - start >= 0.7);
        assert_true(now_seconds() - start < 3);
        assert_null(n);
        ssh_node_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fingerprint_vector),
            cmocka_unit_test(test_fingerprint_rejects_garbage),
            cmocka_unit_test(test_read_pubkey),
            cmocka_unit_test(test_keygen),
            cmocka_unit_test(test_connect_refusals),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
