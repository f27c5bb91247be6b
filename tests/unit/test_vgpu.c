/* The fake vGPU's node setup (provision/vgpu/vgpu.c) against a simulated
 * node that answers vgpu-node.sh's verbs: where the module comes from (the
 * host's cache for a Debian kernel, a build on the node for a RHEL kernel
 * with headers, a clear refusal otherwise), that a second run changes
 * nothing, that a refusal leaves the node as it was, and the judgement of
 * what the node offers against what KubeVirt's tests read. The real script
 * on a real node is tests/integration/vgpu_local.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "provision/vgpu/kmod.h"
#include "provision/vgpu/vgpu.h"

#define KVER "6.1.0-99-amd64"
#define PKGVER "6.1.999-1"

struct fake {
        bool script; /* vgpu-node.sh uploaded */
        bool debian; /* the kernel comes from a Debian package */
        bool headers, compiler;
        char installed[65]; /* digest recorded next to the module */
        bool loaded;
        char display[16];
        unsigned instances;
        const char *check_out; /* NULL: a good T4 */
        char *script_text;
        char **log;
};

static const char good_check[] =
    "display=dmabuf\n"
    "parent=0000:05:00.0|nvidia\n"
    "type=0000:05:00.0|nvidia-222|16|GRID T4-1B|num_heads=4, frl_config=45, framebuffer=1024M, "
    "max_resolution=5120x2880, max_instance=16\n"
    "type=0000:05:00.0|nvidia-223|8|GRID T4-2B|num_heads=4, frl_config=45, framebuffer=2048M, "
    "max_resolution=5120x2880, max_instance=8\n"
    "instances=0\n";

static void out(struct proc_result *r, int code, const char *text)
{
        r->exit_code = code;
        assert_int_equal(buf_puts(&r->out, text), 0);
        assert_int_equal(buf_puts(&r->err, ""), 0);
}

static void script_verb(struct fake *f, char *const *argv, struct proc_result *r)
{
        const char *v = argv[2];
        char buf[2048];

        if (streq(v, "facts")) {
                snprintf(buf, sizeof(buf),
                         "kernel=" KVER "\n%s"
                         "build-dir=%s\ncompiler=%s\n%s%s%s"
                         "loaded=%s\npci-parents=0000:05:00.0 \ninstances=%u\n",
                         f->debian ? "kernel-package-version=" PKGVER "\n" : "",
                         f->headers ? "yes" : "no", f->compiler ? "yes" : "no",
                         f->installed[0] ? "installed-source=" : "", f->installed,
                         f->installed[0] ? "\n" : "", f->loaded ? "yes" : "no", f->instances);
                out(r, 0, buf);
        } else if (streq(v, "install")) {
                snprintf(f->installed, sizeof(f->installed), "%s", argv[4]);
                out(r, 0,
                    "changed=installed /lib/modules/" KVER "/updates/vgpuenv/vgpuenv_t4.ko\n");
        } else if (streq(v, "build")) {
                out(r, 0, "built=" VGPU_NODE_WORK "/src/vgpuenv_t4.ko\n");
        } else if (streq(v, "load")) {
                buf[0] = 0;
                if (!f->loaded || !streq(f->display, argv[3]))
                        snprintf(buf, sizeof(buf), "changed=loaded vgpuenv_t4 (display %s)\n",
                                 argv[3]);
                f->loaded = true;
                snprintf(f->display, sizeof(f->display), "%s", argv[3]);
                out(r, 0, buf);
        } else if (streq(v, "check")) {
                out(r, 0, f->check_out ? f->check_out : good_check);
        } else if (streq(v, "remove")) {
                if (f->instances) {
                        out(r, 1,
                            "error=2 mdev instance(s) of vgpuenv_t4 exist (a b): remove "
                            "them first; nothing was changed\n");
                        return;
                }
                f->loaded = false;
                f->installed[0] = 0;
                out(r, 0, "changed=unloaded vgpuenv_t4\n");
        } else
                fail_msg("unexpected verb %s", v);
}

static int fake_run(void *u, char *const *argv, struct proc_result *r)
{
        struct fake *f = u;
        strv_push(&f->log, shell_join(argv));
        memset(r, 0, sizeof(*r));
        if (streq(argv[0], "cat"))
                out(r, f->script ? 0 : 1,
                    f->script && f->script_text ? f->script_text
                    : f->script                 ? "an old one"
                                                : "");
        else if (streq(argv[0], "mkdir"))
                out(r, 0, "");
        else if (streq(argv[0], "sh") && streq(argv[1], VGPU_NODE_SCRIPT))
                script_verb(f, argv, r);
        else
                fail_msg("unexpected command %s", argv[0]);
        return 0;
}

static int fake_script(void *u, const char *s, struct proc_result *r)
{
        (void)u;
        (void)s;
        (void)r;
        fail_msg("no script expected");
        return -EIO;
}

static int fake_upload_data(void *u, const void *d, size_t n, const char *remote, mode_t m)
{
        struct fake *f = u;
        (void)m;
        if (streq(remote, VGPU_NODE_SCRIPT)) {
                f->script = true;
                free(f->script_text);
                f->script_text = strndup(d, n);
        }
        strv_push(&f->log, strdup_printf("WRITE %s", remote));
        return 0;
}

static int fake_upload(void *u, const char *local, const char *remote, mode_t m)
{
        struct fake *f = u;
        (void)m;
        assert_true(file_exists(local));
        strv_push(&f->log, strdup_printf("UPLOAD %s", remote));
        return 0;
}

static bool logged(struct fake *f, const char *prefix)
{
        for (size_t i = 0; f->log && f->log[i]; i++)
                if (startswith(f->log[i], prefix))
                        return true;
        return false;
}

struct fixture {
        char dir[64];
        struct config cfg;
        struct run_ctx ctx;
        struct fake node;
        struct node_io io;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        strcpy(fx->dir, "/tmp/test_vgpu.XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        setenv("VGPUENV_CACHE_DIR", fx->dir, 1);
        config_init_defaults(&fx->cfg);
        fx->ctx.cfg = &fx->cfg;
        fx->io = (struct node_io){.userdata = &fx->node,
                                  .run = fake_run,
                                  .run_script = fake_script,
                                  .upload_data = fake_upload_data,
                                  .upload = fake_upload};
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        strv_free(fx->node.log);
        free(fx->node.script_text);
        config_done(&fx->cfg);
        rm_rf(fx->dir);
        free(fx);
        return 0;
}

/* What kmod_build_debian() would have left for this kernel: the test does
 * not download 14 MB of headers. */
static void seed_cache(struct fixture *fx)
{
        char digest[65];
        _cleanup_free_ char *d = strdup_printf("%s/vgpu/" KVER, fx->dir);
        _cleanup_free_ char *ko = strdup_printf("%s/vgpuenv_t4.ko", d);
        _cleanup_free_ char *stamp = strdup_printf("%s/version", d);
        assert_int_equal(vgpu_source_digest(digest), 0);
        _cleanup_free_ char *text = strdup_printf(PKGVER " %s", digest);
        assert_int_equal(mkdir_p(d, 0755), 0);
        assert_int_equal(write_file_atomic(ko, "ELF", 3, 0644), 0);
        assert_int_equal(write_file_atomic(stamp, text, strlen(text), 0644), 0);
}

static const cJSON *row(const cJSON *v)
{
        const cJSON *c;
        cJSON_ArrayForEach(
            c,
            cJSON_GetObjectItem(v, "checks")) if (streq(cJSON_GetObjectItem(c, "name")->valuestring,
                                                        "vgpu")) return c;
        fail_msg("no vgpu row");
        return NULL;
}

static void test_debian_node_first_and_second_run(void **state)
{
        struct fixture *fx = *state;
        char digest[65];
        cJSON *v = cJSON_CreateObject();

        fx->node.debian = true;
        seed_cache(fx);
        assert_int_equal(vgpu_node_step(&fx->ctx, &fx->io, "n1", FAMILY_DEBIAN, v), 0);
        const cJSON *c = row(v);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(c, "ok")));
        assert_string_equal(cJSON_GetObjectItem(c, "detail")->valuestring,
                            "vgpuenv_t4, display dmabuf: 0000:05:00.0: nvidia-222 \"GRID T4-1B\" "
                            "16 available nvidia-223 \"GRID T4-2B\" 8 available");
        assert_true(logged(&fx->node, "WRITE " VGPU_NODE_SCRIPT));
        assert_true(logged(&fx->node, "UPLOAD " VGPU_NODE_WORK "/vgpuenv_t4.ko"));
        assert_int_equal(vgpu_source_digest(digest), 0);
        _cleanup_free_ char *install = strdup_printf(
            "sh " VGPU_NODE_SCRIPT " install " VGPU_NODE_WORK "/vgpuenv_t4.ko %s", digest);
        assert_true(logged(&fx->node, install));
        assert_true(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " load dmabuf 0"));
        assert_false(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " build"));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "changed")), 2);
        cJSON_Delete(v);

        /* Second run: the same source is installed and loaded: no upload,
         * no install, no change. */
        strv_free(fx->node.log);
        fx->node.log = NULL;
        v = cJSON_CreateObject();
        assert_int_equal(vgpu_node_step(&fx->ctx, &fx->io, "n1", FAMILY_DEBIAN, v), 0);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(row(v), "ok")));
        assert_false(logged(&fx->node, "WRITE"));
        assert_false(logged(&fx->node, "UPLOAD"));
        assert_false(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " install"));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "changed")), 0);
        cJSON_Delete(v);
}

static void test_rhel_node_builds_itself(void **state)
{
        struct fixture *fx = *state;
        cJSON *v = cJSON_CreateObject();

        fx->node.headers = fx->node.compiler = true;
        fx->cfg.vgpu = VGPU_REGION;
        assert_int_equal(vgpu_node_step(&fx->ctx, &fx->io, "c1", FAMILY_RHEL, v), 0);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(row(v), "ok")));
        assert_true(logged(&fx->node, "WRITE " VGPU_NODE_WORK "/src/vgpuenv_t4.c"));
        assert_true(logged(&fx->node, "WRITE " VGPU_NODE_WORK "/src/Kbuild"));
        assert_true(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " build " VGPU_NODE_WORK "/src"));
        assert_true(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " install " VGPU_NODE_WORK
                                      "/src/vgpuenv_t4.ko "));
        assert_true(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " load region 0"));
        assert_false(logged(&fx->node, "UPLOAD"));
        cJSON_Delete(v);
}

/* No Debian package and no headers on the node: a clear row, and nothing
 * installed or loaded. */
static void test_kernel_without_headers(void **state)
{
        struct fixture *fx = *state;
        cJSON *v = cJSON_CreateObject();

        assert_int_equal(vgpu_node_step(&fx->ctx, &fx->io, "c2", FAMILY_RHEL, v), 0);
        const cJSON *c = row(v);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItem(c, "ok")));
        assert_string_equal(cJSON_GetObjectItem(c, "detail")->valuestring,
                            "cannot build vgpuenv_t4 for kernel " KVER
                            ": the kernel is not from a Debian package this host can fetch; the "
                            "node has no kernel headers (/lib/modules/KVER/build): for a "
                            "RHEL-family node install kernel-devel-" KVER
                            ", gcc and make (dnf install), or set vgpu: none");
        assert_false(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " install"));
        assert_false(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " load"));
        assert_false(logged(&fx->node, "sh " VGPU_NODE_SCRIPT " build"));
        assert_false(fx->node.loaded);
        cJSON_Delete(v);
}

static void test_none(void **state)
{
        struct fixture *fx = *state;
        cJSON *v = cJSON_CreateObject();

        /* A node that never had it: a skip row, not one write. */
        fx->cfg.vgpu = VGPU_NONE;
        assert_int_equal(vgpu_node_step(&fx->ctx, &fx->io, "n1", FAMILY_DEBIAN, v), 0);
        assert_string_equal(cJSON_GetObjectItem(row(v), "status")->valuestring, "SKIP");
        assert_false(logged(&fx->node, "WRITE"));
        assert_false(logged(&fx->node, "sh "));
        cJSON_Delete(v);

        /* Installed earlier and in use: refused with the reason, still there. */
        fx->node.script = fx->node.loaded = true;
        fx->node.instances = 2;
        v = cJSON_CreateObject();
        assert_int_equal(vgpu_node_step(&fx->ctx, &fx->io, "n1", FAMILY_DEBIAN, v), 0);
        const cJSON *c = row(v);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItem(c, "ok")));
        assert_non_null(strstr(cJSON_GetObjectItem(c, "detail")->valuestring,
                               "2 mdev instance(s) of vgpuenv_t4 exist"));
        assert_true(fx->node.loaded);
        cJSON_Delete(v);
}

static void test_judge(void **state)
{
        (void)state;
        char *d = NULL;

        assert_true(vgpu_judge_check(good_check, "dmabuf", &d));
        free(d);
        static const struct {
                const char *check, *display, *detail;
        } bad[] = {
            /* The seeds' description has no max_instance=: the suite's
             * BeforeEach would read 0 instances. */
            {"parent=nvidia|none\n"
             "type=nvidia|nvidia-222|16|GRID T4-1B|NVIDIA GRID vGPU (1b), 1024MB framebuffer\n"
             "type=nvidia|nvidia-223|8|GRID T4-2B|NVIDIA GRID vGPU (2b), 2048MB framebuffer\n",
             "dmabuf", "nvidia-222 \"GRID T4-1B\" 16 available (NOT what KubeVirt expects)"},
            /* Misnamed types. */
            {"parent=0000:05:00.0|nvidia\n"
             "type=0000:05:00.0|nvidia-222|16|GRID T4-1Q|num_heads=4, max_instance=16\n"
             "type=0000:05:00.0|nvidia-223|8|GRID T4-2B|num_heads=4, max_instance=8\n",
             "region", NULL},
            /* Loaded, no parent. */
            {"display=dmabuf\ninstances=0\n", "dmabuf",
             "vgpuenv_t4 is loaded but offers no parent under /sys/class/mdev_bus"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_false(vgpu_judge_check(bad[i].check, bad[i].display, &d));
                if (bad[i].detail && !strstr(d, bad[i].detail))
                        fail_msg("%s: detail %s", bad[i].check, d);
                free(d);
        }
        _cleanup_free_ char *p = vgpu_first_parent(good_check);
        assert_string_equal(p, "0000:05:00.0");
}

/* Loaded, but nothing to bind to: the row fails. */
static void test_no_parent(void **state)
{
        struct fixture *fx = *state;
        cJSON *v = cJSON_CreateObject();

        fx->node.debian = true;
        seed_cache(fx);
        fx->node.check_out = "display=dmabuf\ninstances=3\n";
        assert_int_equal(vgpu_node_step(&fx->ctx, &fx->io, "n1", FAMILY_DEBIAN, v), 0);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItem(row(v), "ok")));
        cJSON_Delete(v);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_debian_node_first_and_second_run, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rhel_node_builds_itself, setup, teardown),
            cmocka_unit_test_setup_teardown(test_kernel_without_headers, setup, teardown),
            cmocka_unit_test_setup_teardown(test_none, setup, teardown),
            cmocka_unit_test(test_judge),
            cmocka_unit_test_setup_teardown(test_no_parent, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
