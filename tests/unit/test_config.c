/* Unit tests for provision/base/config.c: defaults, the shipped configs, every
 * bad-config class (file:line:column and -EINVAL), cross-field rules,
 * environment overrides and the derived node names and addresses. */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/macro.h"
#include "common/util.h"
#include "provision/base/config.h"

static char tmpdir[PATH_MAX];

static int group_setup(void **state)
{
        (void)state;
        strcpy(tmpdir, "/tmp/test_config.XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        unsetenv("KUBEVIRT_NUM_NODES");
        unsetenv("KUBEVIRT_PROVIDER");
        return 0;
}

static int group_teardown(void **state)
{
        (void)state;
        return rm_rf(tmpdir);
}

static int reset_env(void **state)
{
        (void)state;
        unsetenv("KUBEVIRT_NUM_NODES");
        unsetenv("KUBEVIRT_PROVIDER");
        return 0;
}

/* Write text to <tmpdir>/c.yaml and return that path (static buffer). */
static const char *write_config(const char *text)
{
        static char path[PATH_MAX + 16];

        snprintf(path, sizeof(path), "%s/c.yaml", tmpdir);
        assert_int_equal(write_file_atomic(path, text, strlen(text), 0644), 0);
        return path;
}

/* The config text is refused with exactly the message want, after the
 * file's path and a colon when at_path (a position in the file). */
static void expect_refused(const char *text, bool at_path, const char *want)
{
        struct config c;
        _cleanup_free_ char *msg = NULL, *full = NULL;
        const char *path = write_config(text);

        assert_int_equal(config_load_quiet(&c, path, &msg), -EINVAL);
        assert_non_null(msg);
        full = at_path ? strdup_printf("%s:%s", path, want) : strdup(want);
        assert_string_equal(msg, full);
        config_done(&c);
}

static void expect_bad(const char *text, const char *expected_after_path)
{
        expect_refused(text, true, expected_after_path);
}

static void expect_good(const char *text, struct config *c)
{
        _cleanup_free_ char *msg = NULL;
        int r = config_load_quiet(c, write_config(text), &msg);

        if (r < 0)
                fail_msg("unexpected error: %s", msg);
        assert_null(msg);
}

static void test_defaults(void **state)
{
        (void)state;
        struct config c;
        _cleanup_free_ char *ip0 = NULL, *ip2 = NULL, *host = NULL, *n1 = NULL;

        expect_good("# nothing set\n", &c);
        assert_string_equal(c.name, "vgpuenv");
        assert_int_equal(c.provider, PROVIDER_LOCAL);
        assert_int_equal(c.gpu, GPU_VIRTIO);
        assert_int_equal(c.nodes.count, 1);
        assert_int_equal(c.nodes.cpus, 1);
        assert_int_equal(c.nodes.memory, 1024);
        assert_int_equal(c.nodes.disk, 6);
        assert_int_equal(c.nodes.ctlplanes, 1);
        assert_string_equal(c.image.base, "debian-bookworm");
        assert_int_equal(c.image.family, FAMILY_AUTO);
        assert_int_equal(c.image.profile, PROFILE_NODE);
        assert_string_equal(c.image.mirror, "http://deb.debian.org/debian");
        assert_null(c.image.extra_packages);
        assert_null(c.mesa.packages);
        assert_null(c.mesa.local_dir);
        assert_int_equal(c.network.mode, NETWORK_NAT);
        assert_string_equal(c.network.subnet, "192.168.123.0/24");
        assert_string_equal(c.ssh.user, "root");
        assert_null(c.ssh.key);
        assert_int_equal(c.ssh.timeout, 300);
        assert_string_equal(c.local.uri, "qemu:///system");
        assert_int_equal(c.local.accel, ACCEL_AUTO);
        assert_string_equal(c.kcli.binary, "kcli");
        assert_string_equal(c.kcli.image, "centos9stream");
        assert_string_equal(c.kcli.uri, "qemu:///system");
        assert_null(c.kcli.version);
        assert_string_equal(c.kubevirtci.provider, "k8s-1.36");
        assert_string_equal(c.kind.provider, "kind-1.35-vgpu");
        assert_int_equal(c.webhook.deploy, DEPLOY_URL);
        assert_int_equal(c.webhook.mode, WEBHOOK_HOSTPATH);
        assert_null(c.webhook.url);
        assert_true(c.kubevirt.configure);
        assert_string_equal(c.kubevirt.namespace, "kubevirt");
        assert_string_equal(c.kubevirt.kubectl, "kubectl");

        ip0 = config_node_ip(&c, 0);
        ip2 = config_node_ip(&c, 2);
        host = config_host_ip(&c);
        n1 = config_node_name(&c, 0);
        assert_string_equal(ip0, "192.168.123.10");
        assert_string_equal(ip2, "192.168.123.12");
        assert_string_equal(host, "192.168.123.1");
        assert_string_equal(n1, "vgpuenv-node1");
        assert_int_equal(config_image_family(&c), FAMILY_DEBIAN);
        config_done(&c);
        assert_null(c.name);
        assert_null(c.path);
}

static void test_mesa_packages(void **state)
{
        (void)state;
        struct config c;

        expect_good("", &c);
        char **deb = config_mesa_packages(&c, FAMILY_DEBIAN);
        _cleanup_free_ char *d = strv_join(deb, " ");
        assert_string_equal(d, "libegl-mesa0 libegl1 libgbm1 libgl1 libgl1-mesa-dri libgles2 "
                               "libglx-mesa0 libopengl0");
        _cleanup_free_ char *r = strv_join(config_mesa_packages(&c, FAMILY_RHEL), " ");
        assert_string_equal(r, "mesa-dri-drivers mesa-libEGL mesa-libgbm mesa-libGL libglvnd-egl "
                               "libglvnd-gles");
        config_done(&c);

        expect_good("mesa:\n  packages: [libegl1, libgbm1]\n", &c);
        _cleanup_free_ char *o = strv_join(config_mesa_packages(&c, FAMILY_RHEL), " ");
        assert_string_equal(o, "libegl1 libgbm1");
        config_done(&c);
}

static void test_shipped_local_yaml(void **state)
{
        (void)state;
        struct config c;
        _cleanup_free_ char *msg = NULL;

        /* Tests run from the top of the tree (make test). */
        assert_int_equal(config_load_quiet(&c, "configs/local.yaml", &msg), 0);
        assert_null(msg);
        assert_string_equal(c.name, "vgpuenv");
        assert_int_equal(c.nodes.count, 1);
        assert_int_equal(c.provider, PROVIDER_LOCAL);
        assert_int_equal(c.gpu, GPU_VIRTIO);
        assert_string_equal(c.image.base, "debian-bookworm");
        config_done(&c);
}

static void test_full_config(void **state)
{
        (void)state;
        struct config c;
        _cleanup_free_ char *n3 = NULL, *ip = NULL, *img = NULL, *key = NULL, *want_key = NULL;
        _cleanup_free_ char *sub = strdup_printf("%s/imgs", tmpdir);

        assert_int_equal(mkdir_p(sub, 0755), 0);
        img = strdup_printf("%s/imgs/CentOS-Stream-9.qcow2", tmpdir);
        assert_int_equal(write_file_atomic(img, "x", 1, 0644), 0);
        expect_good("name: gpu-lab-2\n"
                    "provider: kcli\n"
                    "gpu: virtio-3d\n"
                    "nodes: {count: 3, cpus: 2, memory: 2048, disk: 20, ctlplanes: 1}\n"
                    "image:\n"
                    "  base: imgs/CentOS-Stream-9.qcow2\n"
                    "  profile: display\n"
                    "  extra_packages: [htop]\n"
                    "network: {mode: isolated, subnet: 10.77.3.0/24}\n"
                    "ssh: {user: cloud-user, key: keys/id, timeout: 60}\n"
                    "local: {accel: tcg}\n"
                    "kcli: {version: '1.30', client: local}\n"
                    "webhook: {deploy: cluster, mode: cdi}\n"
                    "kubevirt: {configure: no}\n",
                    &c);
        assert_string_equal(c.name, "gpu-lab-2");
        assert_int_equal(c.provider, PROVIDER_KCLI);
        assert_int_equal(c.gpu, GPU_VIRTIO_3D);
        assert_int_equal(c.nodes.count, 3);
        assert_int_equal(c.nodes.memory, 2048);
        /* Relative paths are resolved against the config's directory. */
        assert_string_equal(c.image.base, img);
        assert_int_equal(config_image_family(&c), FAMILY_RHEL);
        assert_int_equal(c.image.profile, PROFILE_DISPLAY);
        assert_string_equal(c.image.extra_packages[0], "htop");
        want_key = strdup_printf("%s/keys/id", tmpdir);
        assert_string_equal(c.ssh.key, want_key);
        assert_int_equal(c.ssh.timeout, 60);
        assert_int_equal(c.local.accel, ACCEL_TCG);
        assert_string_equal(c.kcli.version, "1.30");
        assert_int_equal(c.webhook.deploy, DEPLOY_CLUSTER);
        assert_int_equal(c.webhook.mode, WEBHOOK_CDI);
        assert_false(c.kubevirt.configure);
        n3 = config_node_name(&c, 2);
        ip = config_node_ip(&c, 2);
        assert_string_equal(n3, "gpu-lab-2-node3");
        assert_string_equal(ip, "10.77.3.12");
        config_done(&c);
}

static void test_schema_errors(void **state)
{
        (void)state;
        expect_bad("nodes:\n  cpu: 2\n",
                   "2:3: unknown key 'cpu' in nodes (valid: count, cpus, memory, disk, ctlplanes)");
        expect_bad("nmae: x\n",
                   "1:1: unknown top-level key 'nmae' (valid: name, provider, gpu, vgpu, nodes, "
                   "image, mesa, network, ssh, local, kcli, kubevirtci, kind, webhook, registry, "
                   "kubevirt, deadlines)");
        expect_bad("nodes:\n  count: two\n", "2:10: nodes.count: expected an integer, got 'two'");
        expect_bad("nodes:\n  count: 40\n", "2:10: nodes.count must be between 1 and 16, got 40");
        expect_bad("nodes:\n  memory: -512\n",
                   "2:11: nodes.memory must be between 256 and 262144, got -512");
        expect_bad("provider: docker\n",
                   "1:11: invalid provider 'docker' (valid: local, kcli, kubevirtci, kind)");
        expect_bad("gpu: virgl\n", "1:6: invalid gpu 'virgl' (valid: virtio, virtio-3d, none)");
        expect_bad("vgpu: nvidia\n",
                   "1:7: invalid vgpu 'nvidia' (valid: auto, dmabuf, region, none, host)");
        expect_bad("kubevirt:\n  configure: maybe\n",
                   "2:14: kubevirt.configure: expected a boolean (true, false, yes, no), got "
                   "'maybe'");
        expect_bad("image: debian\n", "1:8: image: expected a mapping, got 'debian'");
        expect_bad("image:\n  extra_packages: htop\n",
                   "2:19: image.extra_packages: expected a list of strings, got 'htop'");
        expect_bad("name: a\nnodes: {count: 1}\nname: b\n",
                   "3:1: duplicate key 'name' (first at line 1, column 1)");
        expect_bad("nodes:\n  count: 1\n   cpus: 2\n",
                   "3:8: YAML syntax error: mapping values are not allowed in this context");
}

static void test_cross_field_errors(void **state)
{
        (void)state;
        expect_bad("name: My_Cluster\n",
                   "1:1: name 'My_Cluster' is invalid: use 1 to 32 of a-z, 0-9 and '-', not "
                   "starting or ending with '-'");
        expect_bad("gpu: none\nname: -x\n",
                   "2:1: name '-x' is invalid: use 1 to 32 of a-z, 0-9 and '-', not starting or "
                   "ending with '-'");
        expect_bad("name: abcdefghijklmnopqrstuvwxyz0123456\n",
                   "1:1: name 'abcdefghijklmnopqrstuvwxyz0123456' is invalid: use 1 to 32 of a-z, "
                   "0-9 and '-', not starting or ending with '-'");
        expect_bad("network:\n  subnet: 10.0.0.0/16\n",
                   "2:3: network.subnet must be an IPv4 /24 in CIDR notation (e.g. "
                   "192.168.123.0/24), got '10.0.0.0/16'");
        expect_bad("network:\n  subnet: 10.0.300.0/24\n",
                   "2:3: network.subnet must be an IPv4 /24 in CIDR notation (e.g. "
                   "192.168.123.0/24), got '10.0.300.0/24'");
        expect_bad("network:\n  subnet: 10.0.0.5/24\n",
                   "2:3: network.subnet must be an IPv4 /24 in CIDR notation (e.g. "
                   "192.168.123.0/24), got '10.0.0.5/24'");
        expect_bad("network:\n  subnet: 10.0.0.0\n",
                   "2:3: network.subnet must be an IPv4 /24 in CIDR notation (e.g. "
                   "192.168.123.0/24), got '10.0.0.0'");
        expect_bad("nodes:\n  count: 2\n  ctlplanes: 3\n",
                   "3:3: nodes.ctlplanes (3) must not exceed nodes.count (2)");
        expect_bad("provider: kubevirtci\n",
                   "1:1: kubevirtci.dir is required when provider is kubevirtci");
        expect_bad("# kind\nprovider: kind\n", "2:1: kind.dir is required when provider is kind");
        expect_bad("kubevirt:\n  launcher_gl: true\n",
                   "2:3: kubevirt.launcher_gl pushes an image: set registry.push (HOST:PORT this "
                   "host pushes to; `auto` for the provider's own registry) and, when the nodes "
                   "name it otherwise, registry.pull");
        expect_bad("webhook:\n  build_image: true\nregistry:\n  pull: registry:5000\n",
                   "2:3: webhook.build_image pushes an image: set registry.push (HOST:PORT this "
                   "host pushes to; `auto` for the provider's own registry) and, when the nodes "
                   "name it otherwise, registry.pull");
        expect_bad("webhook:\n  deploy: url\n  url: http://127.0.0.1:8443\n",
                   "3:3: webhook.url must start with https:// (the API server calls webhooks over "
                   "TLS only), got 'http://127.0.0.1:8443'");

        _cleanup_free_ char *img = strdup_printf(
            "2:3: image.base: file '%s/missing.qcow2': No such file or directory (use "
            "debian-bookworm or the path of a qcow2 image)",
            tmpdir);
        expect_bad("image:\n  base: missing.qcow2\n", img);
        _cleanup_free_ char *dir =
            strdup_printf("2:3: image.base: '%s/.' is not a regular file (use "
                          "debian-bookworm or the path of a qcow2 image)",
                          tmpdir);
        expect_bad("image:\n  base: .\n", dir);
        _cleanup_free_ char *mesa = strdup_printf(
            "2:3: mesa.local_dir: directory '%s/debs': No such file or directory", tmpdir);
        expect_bad("mesa:\n  local_dir: debs\n", mesa);
}

static void test_cross_field_good(void **state)
{
        (void)state;
        struct config c;
        _cleanup_free_ char *debs = strdup_printf("%s/debs2", tmpdir);

        assert_int_equal(mkdir_p(debs, 0755), 0);
        expect_good("mesa:\n  local_dir: ./debs2\n"
                    "provider: kubevirtci\nkubevirtci: {dir: kv}\n"
                    "webhook: {deploy: url, url: 'https://127.0.0.1:8443'}\n"
                    "nodes: {count: 2, ctlplanes: 2}\n",
                    &c);
        assert_string_equal(c.mesa.local_dir, debs);
        _cleanup_free_ char *kv = strdup_printf("%s/kv", tmpdir);
        assert_string_equal(c.kubevirtci.dir, kv);
        assert_string_equal(c.webhook.url, "https://127.0.0.1:8443");
        config_done(&c);

        /* vgpu: auto is dmabuf on VM providers and region on kind, whose
         * nodes have no render node; an explicit value wins. */
        static const struct {
                const char *yaml;
                enum vgpu_mode mode;
        } modes[] = {
            {"name: a\n", VGPU_DMABUF},
            {"provider: kind\nkind: {dir: kv}\n", VGPU_REGION},
            {"provider: kind\nkind: {dir: kv}\nvgpu: dmabuf\n", VGPU_DMABUF},
            {"vgpu: none\n", VGPU_NONE},
        };
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                expect_good(modes[i].yaml, &c);
                assert_int_equal(config_vgpu_mode(&c), modes[i].mode);
                config_done(&c);
        }
        expect_good("name: a\n", &c);
        assert_int_equal(c.vgpu, VGPU_AUTO);
        config_done(&c);

        /* A single-character name and 32 characters are both fine. */
        expect_good("name: a\n", &c);
        config_done(&c);
        expect_good("name: abcdefghijklmnopqrstuvwxyz012345\n", &c);
        config_done(&c);
}

static void test_env_overrides(void **state)
{
        (void)state;
        struct config c;

        setenv("KUBEVIRT_NUM_NODES", "3", 1);
        expect_good("nodes:\n  count: 1\n", &c);
        assert_int_equal(c.nodes.count, 3);
        config_done(&c);

        /* A bad value is named with the variable, not a file position. */
        static const char *const bad_counts[] = {"40", "abc"};
        for (size_t i = 0; i < ELEMENTSOF(bad_counts); i++) {
                _cleanup_free_ char *want = strdup_printf(
                    "KUBEVIRT_NUM_NODES: nodes.count must be between 1 and 16, got '%s'",
                    bad_counts[i]);

                setenv("KUBEVIRT_NUM_NODES", bad_counts[i], 1);
                expect_refused("", false, want);
        }
        /* The override is validated like the file: ctlplanes must still fit. */
        setenv("KUBEVIRT_NUM_NODES", "1", 1);
        expect_bad("nodes:\n  count: 3\n  ctlplanes: 2\n",
                   "3:3: nodes.ctlplanes (2) must not exceed nodes.count (1, from "
                   "KUBEVIRT_NUM_NODES)");
        unsetenv("KUBEVIRT_NUM_NODES");

        setenv("KUBEVIRT_PROVIDER", "kind-1.31-vgpu", 1);
        expect_good("provider: kind\nkind: {dir: /src/kubevirtci}\n", &c);
        assert_string_equal(c.kind.provider, "kind-1.31-vgpu");
        assert_string_equal(c.kubevirtci.provider, "k8s-1.36");
        config_done(&c);

        setenv("KUBEVIRT_PROVIDER", "k8s-1.31", 1);
        expect_good("provider: kubevirtci\nkubevirtci: {dir: /src/kubevirt, provider: k8s-1.29}\n",
                    &c);
        assert_string_equal(c.kubevirtci.provider, "k8s-1.31");
        assert_string_equal(c.kind.provider, "kind-1.35-vgpu");
        config_done(&c);

        /* Another provider is selected: the variable is not ours to apply. */
        expect_good("provider: local\n", &c);
        assert_string_equal(c.kubevirtci.provider, "k8s-1.36");
        assert_string_equal(c.kind.provider, "kind-1.35-vgpu");
        config_done(&c);
}

static void test_load_logs_and_einval(void **state)
{
        (void)state;
        struct config c;

        /* The logging variant returns the same code (callers exit 2). */
        assert_int_equal(config_load(&c, write_config("nodes: {count: 99}\n")), -EINVAL);
        config_done(&c);
        assert_int_equal(config_load(&c, "/nonexistent/vgpuenv.yaml"), -ENOENT);
        config_done(&c);
        assert_int_equal(config_load(&c, write_config("name: ok\n")), 0);
        config_done(&c);
}

static void test_reference(void **state)
{
        (void)state;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_int_equal(config_print_reference(f), 0);
        fclose(f);
        assert_non_null(strstr(buf, "| `nodes.count` | integer | `1` | 1..16 |"));
        assert_non_null(strstr(buf,
                               "| `provider` | enum | `local` | `local`, `kcli`, `kubevirtci`, "
                               "`kind` |"));
        assert_non_null(strstr(buf, "| `network.subnet` | string | `192.168.123.0/24` |"));
        assert_non_null(strstr(buf, "| `ssh.key` | string | (unset) |"));
        free(buf);
}

/* The files in tests/fixtures/bad-configs carry their expected error on the first line
 * ("# expect: LINE:COL: message", @CONFIGDIR@ for their directory);
 * the integration test feeds the same files to the CLI. */
static void test_shipped_bad_configs(void **state)
{
        (void)state;
        glob_t g;
        char cwd[PATH_MAX];

        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(glob("tests/fixtures/bad-configs/*.yaml", 0, NULL, &g), 0);
        assert_true(g.gl_pathc >= 10);
        for (size_t i = 0; i < g.gl_pathc; i++) {
                _cleanup_free_ char *text = NULL, *msg = NULL, *want = NULL, *exp = NULL;
                struct config c;
                char *nl, *at;

                assert_int_equal(read_full_file(g.gl_pathv[i], &text, NULL), 0);
                assert_true(startswith(text, "# expect: "));
                nl = strchr(text, '\n');
                assert_non_null(nl);
                *nl = 0;
                exp = strdup(text + strlen("# expect: "));
                at = strstr(exp, "@CONFIGDIR@");
                if (at) {
                        *at = 0;
                        want = strdup_printf("%s:%s%s/tests/fixtures/bad-configs%s", g.gl_pathv[i],
                                             exp, cwd, at + strlen("@CONFIGDIR@"));
                } else
                        want = strdup_printf("%s:%s", g.gl_pathv[i], exp);
                assert_int_equal(config_load_quiet(&c, g.gl_pathv[i], &msg), -EINVAL);
                assert_string_equal(msg, want);
                config_done(&c);
        }
        globfree(&g);
}

/* docs/configuration.md embeds the generated table between markers; it must
 * match the schema, or be rewritten with VGPUENV_UPDATE_DOCS=1. */
static void test_docs_in_sync(void **state)
{
        (void)state;
        static const char doc_path[] = "docs/configuration.md";
        static const char begin[] = "<!-- BEGIN REFERENCE", end[] = "<!-- END REFERENCE -->";
        _cleanup_free_ char *doc = NULL, *table = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&table, &size);

        assert_non_null(f);
        assert_int_equal(config_print_reference(f), 0);
        fclose(f);
        assert_int_equal(read_full_file(doc_path, &doc, NULL), 0);
        char *b = strstr(doc, begin), *e = strstr(doc, end);
        assert_non_null(b);
        assert_non_null(e);
        b = strchr(b, '\n');
        assert_non_null(b);
        b++;
        assert_true(b <= e);
        if (getenv("VGPUENV_UPDATE_DOCS")) {
                _cleanup_free_ char *out = strdup_printf("%.*s%s%s", (int)(b - doc), doc, table, e);
                assert_int_equal(write_file_atomic(doc_path, out, strlen(out), 0644), 0);
                return;
        }
        if ((size_t)(e - b) != size || memcmp(b, table, size) != 0)
                fail_msg("%s is out of date: run VGPUENV_UPDATE_DOCS=1 build/tests/test_config",
                         doc_path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup(test_defaults, reset_env),
            cmocka_unit_test_setup(test_mesa_packages, reset_env),
            cmocka_unit_test_setup(test_shipped_local_yaml, reset_env),
            cmocka_unit_test_setup(test_full_config, reset_env),
            cmocka_unit_test_setup(test_schema_errors, reset_env),
            cmocka_unit_test_setup(test_cross_field_errors, reset_env),
            cmocka_unit_test_setup(test_cross_field_good, reset_env),
            cmocka_unit_test_setup(test_env_overrides, reset_env),
            cmocka_unit_test_setup(test_load_logs_and_einval, reset_env),
            cmocka_unit_test_setup(test_reference, reset_env),
            cmocka_unit_test_setup(test_docs_in_sync, reset_env),
            cmocka_unit_test_setup(test_shipped_bad_configs, reset_env),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
