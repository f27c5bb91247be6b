/* Node setup against a simulated node: the exact remote commands for the
 * Debian and RHEL families, what a first run changes, and that a second run
 * on the same node changes nothing (no install, no write, no udev trigger,
 * no upload). The real-node run is tests/integration/node_setup_local.sh. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/proc.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "provision/node_setup.h"
#include "provision/node_setup_internal.h"

/* ---- a simulated node ----------------------------------------------------- */

#define MAX_FILES 16
struct fake_node {
        const char *os_release;
        char *files[MAX_FILES][2]; /* path, content */
        char *installed[32];
        bool module_loaded;
        bool rule_applied;
        char probe_sha[65];
        const char *probe_json;
        int probe_exit;
        int probe_errno; /* the ssh channel fails on the probe (0: it works) */
        char **log;      /* every command, shell-joined; writes as "WRITE path" */
};

static const char *fake_get(struct fake_node *f, const char *path)
{
        for (int i = 0; i < MAX_FILES; i++)
                if (f->files[i][0] && streq(f->files[i][0], path))
                        return f->files[i][1];
        if (streq(path, "/etc/os-release"))
                return f->os_release;
        return NULL;
}

static void fake_put(struct fake_node *f, const char *path, const char *content)
{
        for (int i = 0; i < MAX_FILES; i++)
                if (f->files[i][0] && streq(f->files[i][0], path)) {
                        free(f->files[i][1]);
                        f->files[i][1] = strdup(content);
                        return;
                }
        for (int i = 0; i < MAX_FILES; i++)
                if (!f->files[i][0]) {
                        f->files[i][0] = strdup(path);
                        f->files[i][1] = strdup(content);
                        return;
                }
        fail_msg("too many files");
}

static bool fake_installed(struct fake_node *f, const char *pkg)
{
        for (int i = 0; f->installed[i]; i++)
                if (streq(f->installed[i], pkg))
                        return true;
        return false;
}

/* What apt-get install or dnf install put on the node: the packages. */
static void fake_install(struct fake_node *f, char *const *pkgs)
{
        int n = 0;

        while (f->installed[n])
                n++;
        for (size_t i = 0; pkgs[i]; i++)
                f->installed[n++] = strdup(pkgs[i]);
}

static void set_out(struct proc_result *r, int code, const char *out)
{
        r->exit_code = code;
        buf_puts(&r->out, out ? out : "");
        buf_puts(&r->err, "");
}

static int fake_run(void *u, char *const *argv, struct proc_result *r)
{
        struct fake_node *f = u;
        char *cmd = shell_join(argv);
        strv_push(&f->log, cmd);
        memset(r, 0, sizeof(*r));

        if (streq(argv[0], "cat")) {
                const char *c = fake_get(f, argv[1]);
                set_out(r, c ? 0 : 1, c);
        } else if (streq(argv[0], "mkdir")) {
                set_out(r, 0, "");
        } else if (streq(argv[0], "dpkg-query") || streq(argv[0], "rpm")) {
                char buf[4096] = "";
                for (size_t i = 4; argv[i]; i++) {
                        char line[256];
                        if (fake_installed(f, argv[i]))
                                snprintf(line, sizeof(line), "%s%s\n",
                                         streq(argv[0], "rpm") ? "" : "install ok installed ",
                                         argv[i]);
                        else if (streq(argv[0], "rpm"))
                                snprintf(line, sizeof(line), "package %s is not installed\n",
                                         argv[i]);
                        else
                                line[0] = 0;
                        strcat(buf, line);
                }
                set_out(r, 0, buf);
        } else if (streq(argv[0], "env") && streq(argv[2], "apt-get") &&
                   streq(argv[3], "install")) {
                fake_install(f, argv + 6);
                set_out(r, 0, "");
        } else if (streq(argv[0], "dnf")) {
                fake_install(f, argv + 3);
                set_out(r, 0, "");
        } else if (streq(argv[0], "test")) {
                set_out(r, f->module_loaded ? 0 : 1, "");
        } else if (streq(argv[0], "modprobe")) {
                f->module_loaded = true;
                set_out(r, 0, "");
        } else if (streq(argv[0], "stat")) {
                set_out(r, f->module_loaded ? 0 : 1, f->rule_applied ? "666\n" : "660\n");
        } else if (streq(argv[0], "sha256sum")) {
                if (f->probe_sha[0]) {
                        char line[128];
                        snprintf(line, sizeof(line), "%s  %s\n", f->probe_sha, argv[1]);
                        set_out(r, 0, line);
                } else
                        set_out(r, 1, "");
        } else if (streq(argv[0], NODE_PROBE_PATH)) {
                if (f->probe_errno)
                        return -f->probe_errno;
                set_out(r, f->probe_exit, f->probe_json);
        } else {
                fail_msg("unexpected command: %s", cmd);
        }
        return 0;
}

static int fake_script(void *u, const char *script, struct proc_result *r)
{
        struct fake_node *f = u;
        memset(r, 0, sizeof(*r));
        if (strstr(script, "udevadm")) {
                strv_extend(&f->log, "SCRIPT udevadm");
                f->rule_applied = fake_get(f, NODE_UDEV_RULE_PATH) != NULL;
                set_out(r, 0, "");
        } else if (streq(script, node_mesa_paths_script)) {
                strv_extend(&f->log, "SCRIPT mesa-paths");
                set_out(r, 0,
                        "/usr/lib/x86_64-linux-gnu/libEGL.so.1\n"
                        "/usr/lib/x86_64-linux-gnu/dri\n");
        } else
                fail_msg("unexpected script: %s", script);
        return 0;
}

static int fake_upload_data(void *u, const void *data, size_t size, const char *remote, mode_t mode)
{
        struct fake_node *f = u;
        (void)mode;
        char *c = strndup(data, size);
        fake_put(f, remote, c);
        free(c);
        char *w = strdup_printf("WRITE %s", remote);
        strv_push(&f->log, w);
        return 0;
}

static int fake_upload(void *u, const char *local, const char *remote, mode_t mode)
{
        struct fake_node *f = u;
        assert_int_equal(mode, 0755);
        assert_int_equal(sha256_file_hex(local, f->probe_sha), 0);
        char *w = strdup_printf("UPLOAD %s", remote);
        strv_push(&f->log, w);
        return 0;
}

static const char PROBE_OK[] = "{\"ok\":true,\"checks\":[{\"name\":\"render "
                               "node\",\"ok\":true,\"detail\":\"/dev/dri/renderD128\"},"
                               "{\"name\":\"egl\",\"ok\":true,\"detail\":\"EGL 1.4\"}]}";

struct fixture {
        char dir[64];
        struct config cfg;
        struct run_ctx ctx;
        struct fake_node node;
        struct node_io io;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        strcpy(fx->dir, "/tmp/test_node_setup.XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        char *probe = strdup_printf("%s/vgpuenv-probe", fx->dir);
        assert_int_equal(write_file_atomic(probe, "#!/bin/sh\necho probe\n", 21, 0755), 0);
        free(probe);
        config_init_defaults(&fx->cfg);
        /* The vGPU step has its own test (tests/unit/test_vgpu.c). */
        fx->cfg.vgpu = VGPU_NONE;
        fx->ctx.cfg = &fx->cfg;
        fx->ctx.build_dir = fx->dir;
        fx->io = (struct node_io){&fx->node, fake_run, fake_script, fake_upload_data, fake_upload};
        fx->node.probe_json = PROBE_OK;
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        rm_rf(fx->dir);
        for (int i = 0; i < MAX_FILES; i++) {
                free(fx->node.files[i][0]);
                free(fx->node.files[i][1]);
        }
        for (int i = 0; fx->node.installed[i]; i++)
                free(fx->node.installed[i]);
        strv_free(fx->node.log);
        config_done(&fx->cfg);
        free(fx);
        return 0;
}

static bool log_has(struct fake_node *f, const char *cmd)
{
        return strv_contains(f->log, cmd);
}

static bool log_has_prefix(struct fake_node *f, const char *prefix)
{
        for (size_t i = 0; f->log && f->log[i]; i++)
                if (startswith(f->log[i], prefix))
                        return true;
        return false;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_family(void **state)
{
        (void)state;
        assert_int_equal(node_family_from_os_release("NAME=\"Debian GNU/Linux\"\nID=debian\n"),
                         FAMILY_DEBIAN);
        assert_int_equal(node_family_from_os_release("ID=ubuntu\nID_LIKE=debian\n"), FAMILY_DEBIAN);
        assert_int_equal(node_family_from_os_release("ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n"),
                         FAMILY_RHEL);
        assert_int_equal(node_family_from_os_release("ID=fedora\n"), FAMILY_RHEL);
        assert_int_equal(
            node_family_from_os_release("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n"),
            FAMILY_RHEL);
        assert_int_equal(node_family_from_os_release("ID=arch\n"), FAMILY_AUTO);
        /* ID_LIKE alone must not match a substring of another key. */
        assert_int_equal(node_family_from_os_release("VERSION_ID=debian\nID=alpine\n"),
                         FAMILY_AUTO);
}

static void test_pkg_argv(void **state)
{
        (void)state;
        char *pkgs[] = {"libegl-mesa0", "libgbm1", NULL};
        char **q = node_pkg_query_argv(FAMILY_DEBIAN, pkgs);
        char *s = shell_join(q);
        assert_string_equal(s, "dpkg-query -W -f '${Status} ${Package}\\n' libegl-mesa0 libgbm1");
        free(s);
        strv_free(q);
        q = node_pkg_install_argv(FAMILY_DEBIAN, pkgs);
        s = shell_join(q);
        assert_string_equal(s, "env DEBIAN_FRONTEND=noninteractive apt-get install -y "
                               "--no-install-recommends libegl-mesa0 libgbm1");
        free(s);
        strv_free(q);

        char *rp[] = {"mesa-libEGL", "mesa-libgbm", NULL};
        q = node_pkg_query_argv(FAMILY_RHEL, rp);
        s = shell_join(q);
        assert_string_equal(s, "rpm -q --qf '%{NAME}\\n' mesa-libEGL mesa-libgbm");
        free(s);
        strv_free(q);
        q = node_pkg_install_argv(FAMILY_RHEL, rp);
        s = shell_join(q);
        assert_string_equal(s, "dnf install -y mesa-libEGL mesa-libgbm");
        free(s);
        strv_free(q);

        char **missing = NULL;
        assert_int_equal(
            node_pkg_parse_missing(FAMILY_RHEL, rp,
                                   "mesa-libEGL\npackage mesa-libgbm is not installed\n", &missing),
            0);
        assert_int_equal(strv_length(missing), 1);
        assert_string_equal(missing[0], "mesa-libgbm");
        strv_free(missing);
        missing = NULL;
        /* dpkg shows "deinstall ok config-files" for removed packages: missing. */
        assert_int_equal(node_pkg_parse_missing(FAMILY_DEBIAN, pkgs,
                                                "install ok installed libegl-mesa0:amd64\n"
                                                "deinstall ok config-files libgbm1\n",
                                                &missing),
                         0);
        assert_int_equal(strv_length(missing), 1);
        assert_string_equal(missing[0], "libgbm1");
        strv_free(missing);
}

static void test_cdi_spec(void **state)
{
        (void)state;
        char *paths[] = {"/usr/lib64/libEGL.so.1", "/usr/lib64/dri", NULL};
        char *spec = node_cdi_spec(paths);
        assert_non_null(strstr(spec, "cdiVersion: \"0.5.0\"\n"));
        assert_non_null(strstr(spec, "kind: " VGPUENV_CDI_KIND "\n"));
        assert_non_null(strstr(spec, "  - name: renderD128\n"));
        assert_non_null(strstr(spec, "        - path: /dev/dri/renderD128\n"));
        assert_non_null(strstr(spec, "          fileMode: 438"));
        assert_non_null(strstr(spec, "          uid: 107\n          gid: 107\n"));
        assert_non_null(strstr(spec, "    - hostPath: /usr/lib64/dri\n"
                                     "      containerPath: /usr/lib64/dri\n"));
        free(spec);
}

/* The mesa-file script on this (Debian) machine, which has mesa: the
 * libraries, what they load, never glibc. */
static void test_mesa_paths_script_here(void **state)
{
        (void)state;
        /* libgbm-dev (make deps) brings libgbm1, which loads libdrm. */
        if (!file_exists("/usr/lib/x86_64-linux-gnu/libgbm.so.1"))
                fail_msg("libgbm1 is not installed here (make deps installs libgbm-dev)");
        char *const argv[] = {"sh", "-c", (char *)node_mesa_paths_script, NULL};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(proc_run_checked("mesa paths", argv, NULL, -1, &out), 0);
        assert_non_null(strstr(out, "/usr/lib/x86_64-linux-gnu/libgbm.so.1\n"));
        if (file_exists("/usr/lib/x86_64-linux-gnu/dri"))
                assert_non_null(strstr(out, "/usr/lib/x86_64-linux-gnu/dri\n"));
        assert_non_null(strstr(out, "/usr/lib/x86_64-linux-gnu/libdrm.so.2\n")); /* a dependency */
        assert_null(strstr(out, "libc.so.6"));
        assert_null(strstr(out, "ld-linux"));
        assert_null(strstr(out, "\n/lib/")); /* shown under /usr on merged /usr */
}

/* A node whose /etc/os-release is os_release, set up with the config's
 * family hint, is taken for want_family. */
static void set_up_as(struct fixture *fx, const char *os_release, enum distro_family hint,
                      const char *want_family)
{
        cJSON *v = cJSON_CreateObject();

        fx->node.os_release = os_release;
        assert_int_equal(node_setup_one(&fx->ctx, &fx->io, "n1", hint, true, v), 0);
        assert_string_equal(cJSON_GetObjectItem(v, "family")->valuestring, want_family);
        cJSON_Delete(v);
}

/* The packages were installed with the family's own command. */
static void assert_installed(struct fixture *fx, enum distro_family family, char **pkgs)
{
        _cleanup_strv_free_ char **inst = node_pkg_install_argv(family, pkgs);
        _cleanup_free_ char *want = shell_join(inst);

        assert_true(log_has(&fx->node, want));
}

static void test_debian_first_and_second_run(void **state)
{
        struct fixture *fx = *state;
        fx->node.os_release = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        fx->node.installed[0] = strdup("libegl-mesa0");

        cJSON *v = cJSON_CreateObject();
        assert_int_equal(node_setup_one(&fx->ctx, &fx->io, "n1", FAMILY_AUTO, true, v), 0);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")));
        assert_string_equal(cJSON_GetObjectItem(v, "family")->valuestring, "debian");
        /* Only the missing packages are installed, with the Debian names. */
        char **pk = config_mesa_packages(&fx->cfg, FAMILY_DEBIAN);
        char **missing = NULL;
        for (size_t i = 0; pk[i]; i++)
                if (!streq(pk[i], "libegl-mesa0"))
                        strv_extend(&missing, pk[i]);
        assert_installed(fx, FAMILY_DEBIAN, missing);
        strv_free(missing);
        assert_true(log_has(&fx->node, "modprobe virtio-gpu"));
        assert_true(log_has(&fx->node, "WRITE " NODE_MODULES_LOAD_PATH));
        assert_true(log_has(&fx->node, "WRITE " NODE_UDEV_RULE_PATH));
        assert_true(log_has(&fx->node, "SCRIPT udevadm"));
        assert_true(log_has(&fx->node, "WRITE " VGPUENV_CDI_SPEC_PATH));
        assert_true(log_has(&fx->node, "UPLOAD " NODE_PROBE_PATH));
        assert_true(log_has(&fx->node, NODE_PROBE_PATH " --json"));
        assert_string_equal(fake_get(&fx->node, NODE_MODULES_LOAD_PATH), node_modules_load_text);
        assert_non_null(strstr(fake_get(&fx->node, NODE_UDEV_RULE_PATH),
                               "KERNEL==\"renderD*\", MODE=\"0666\""));
        assert_non_null(strstr(fake_get(&fx->node, VGPUENV_CDI_SPEC_PATH),
                               "hostPath: /usr/lib/x86_64-linux-gnu/libEGL.so.1"));
        assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(v, "changed")) >= 6);
        /* probe checks plus the render-node mode check and the vgpu row
         * (SKIP: vgpu: none) */
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "checks")), 4);
        cJSON_Delete(v);

        /* Second run: nothing to change. */
        strv_free(fx->node.log);
        fx->node.log = NULL;
        v = cJSON_CreateObject();
        assert_int_equal(node_setup_one(&fx->ctx, &fx->io, "n1", FAMILY_DEBIAN, true, v), 0);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "changed")), 0);
        assert_false(log_has_prefix(&fx->node, "WRITE"));
        assert_false(log_has_prefix(&fx->node, "UPLOAD"));
        assert_false(log_has_prefix(&fx->node, "env DEBIAN_FRONTEND=noninteractive apt-get"));
        assert_false(log_has_prefix(&fx->node, "modprobe"));
        assert_false(log_has_prefix(&fx->node, "SCRIPT udevadm"));
        cJSON_Delete(v);
}

static void test_rhel_names(void **state)
{
        struct fixture *fx = *state;
        set_up_as(fx, "NAME=\"CentOS Stream\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\n",
                  FAMILY_AUTO, "rhel");
        char **pk = config_mesa_packages(&fx->cfg, FAMILY_RHEL);
        assert_true(strv_contains(pk, "mesa-libEGL"));
        assert_installed(fx, FAMILY_RHEL, pk);
        assert_false(log_has_prefix(&fx->node, "env DEBIAN_FRONTEND"));
}

static void test_probe_failure(void **state)
{
        struct fixture *fx = *state;
        fx->node.os_release = "ID=debian\n";
        fx->node.probe_json = "{\"ok\":false,\"checks\":[{\"name\":\"render node\",\"ok\":false,"
                              "\"detail\":\"no /dev/dri/renderD*\"}]}";
        fx->node.probe_exit = 1;
        cJSON *v = cJSON_CreateObject();
        /* A failed probe is the verdict, not an error of setup. */
        assert_int_equal(node_setup_one(&fx->ctx, &fx->io, "n1", FAMILY_AUTO, true, v), 0);
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(v, "ok")));
        assert_null(cJSON_GetObjectItem(v, "error"));
        char buf[4096];
        FILE *f = fmemopen(buf, sizeof(buf), "w");
        cJSON *arr = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(arr, v);
        node_verdicts_print(arr, f);
        fclose(f);
        assert_non_null(strstr(buf, "no /dev/dri/renderD*"));
        assert_non_null(strstr(buf, "FAIL"));
        cJSON_Delete(arr);
        cJSON_Delete(v);

        /* vgpuenv-probe --json: its own "ok" decides; a SKIP check alone
         * does not fail the node. */
        v = cJSON_CreateObject();
        assert_int_equal(
            node_probe_parse(
                "{\"ok\": true, \"device\": \"/dev/dri/renderD128\", \"checks\": ["
                "{\"name\": \"render-node\", \"ok\": true, \"status\": \"PASS\", \"detail\": "
                "\"x\"},"
                "{\"name\": \"dmabuf\", \"ok\": false, \"status\": \"SKIP\", \"detail\": \"y\"}]}",
                0, v),
            0);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")));
        cJSON_Delete(v);
        v = cJSON_CreateObject();
        assert_int_equal(
            node_probe_parse("{\"ok\": false, \"checks\": [{\"name\": \"egl\", \"ok\": false, "
                             "\"status\": \"FAIL\", \"detail\": \"no EGL\"}]}",
                             1, v),
            -EIO);
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(v, "ok")));
        cJSON_Delete(v);

        /* Garbage output is a failed probe, not a crash. */
        v = cJSON_CreateObject();
        cJSON_AddBoolToObject(v, "ok", true);
        assert_int_equal(node_probe_parse("Segmentation fault", 139, v), -EIO);
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(v, "ok")));
        cJSON_Delete(v);
}

/* The ssh channel dies while the probe runs: that is a failure of setup
 * (an error, and the plan rolls back), never a failed probe. The old code
 * returned -EIO for both and `up` took a lost channel for a probe verdict,
 * skipping the rollback. */
static void test_channel_lost(void **state)
{
        struct fixture *fx = *state;
        fx->node.os_release = "ID=debian\n";
        fx->node.probe_errno = EIO;
        cJSON *v = cJSON_CreateObject();
        assert_int_equal(node_setup_one(&fx->ctx, &fx->io, "n1", FAMILY_AUTO, true, v), -EIO);
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(v, "ok")));
        assert_non_null(cJSON_GetObjectItem(v, "error"));
        /* the render-node mode check and the vgpu row (SKIP: vgpu: none);
         * no probe checks */
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "checks")), 2);
        cJSON_Delete(v);
        /* and a probe that passes is distinguished from both */
        fx->node.probe_errno = 0;
        v = cJSON_CreateObject();
        assert_int_equal(node_setup_one(&fx->ctx, &fx->io, "n1", FAMILY_AUTO, true, v), 0);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")));
        cJSON_Delete(v);
}

struct osr_job {
        const char *text;
        enum distro_family want;
        int wrong;
};

static void *osr_thread(void *p)
{
        struct osr_job *j = p;
        for (int i = 0; i < 200000; i++)
                if (node_family_from_os_release(j->text) != j->want)
                        j->wrong++;
        return NULL;
}

/* Node setup runs one thread per node: the os-release parser must not use
 * strtok's process-wide state (four threads parsing different files got
 * each other's tokens with strtok). */
static void test_family_in_threads(void **state)
{
        (void)state;
        struct osr_job jobs[] = {
            {"ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n", FAMILY_RHEL, 0},
            {"ID=ubuntu\nID_LIKE=\"debian\"\n", FAMILY_DEBIAN, 0},
            {"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", FAMILY_RHEL, 0},
            {"ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n", FAMILY_DEBIAN, 0},
        };
        pthread_t t[ELEMENTSOF(jobs)];

        for (size_t i = 0; i < ELEMENTSOF(jobs); i++)
                pthread_create(&t[i], NULL, osr_thread, &jobs[i]);
        for (size_t i = 0; i < ELEMENTSOF(jobs); i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(jobs[i].wrong, 0);
        }
}

static void test_family_hint(void **state)
{
        struct fixture *fx = *state;
        /* os-release names nothing known: the configured family is used */
        set_up_as(fx, "ID=mystery\n", FAMILY_RHEL, "rhel");
        /* os-release wins over a wrong hint */
        set_up_as(fx, "ID=debian\n", FAMILY_RHEL, "debian");
}

static void test_unknown_family(void **state)
{
        struct fixture *fx = *state;
        fx->node.os_release = "ID=alpine\n";
        cJSON *v = cJSON_CreateObject();
        assert_int_equal(node_setup_one(&fx->ctx, &fx->io, "a1", FAMILY_AUTO, true, v),
                         -EOPNOTSUPP);
        assert_non_null(cJSON_GetObjectItem(v, "error"));
        /* Nothing was written on a node we do not understand. */
        assert_false(log_has_prefix(&fx->node, "WRITE"));
        cJSON_Delete(v);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_family),
            cmocka_unit_test(test_pkg_argv),
            cmocka_unit_test(test_cdi_spec),
            cmocka_unit_test(test_mesa_paths_script_here),
            cmocka_unit_test_setup_teardown(test_debian_first_and_second_run, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rhel_names, setup, teardown),
            cmocka_unit_test_setup_teardown(test_probe_failure, setup, teardown),
            cmocka_unit_test_setup_teardown(test_channel_lost, setup, teardown),
            cmocka_unit_test(test_family_in_threads),
            cmocka_unit_test_setup_teardown(test_family_hint, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unknown_family, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
