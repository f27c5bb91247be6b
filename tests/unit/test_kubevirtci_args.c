/* KUBEVIRT_PROVIDER_EXTRA_ARGS as built by the kubevirtci provider, checked
 * two ways: the exact string, and what gocli would receive after real bash
 * runs it through kubevirtci's own path (`echo $params`, then `eval`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/proc.h"
#include "common/util.h"
#include "providers/kubevirtci.h"
#include "tests/unit/fixture_tests.h"

/* What gocli's argv would be after kubevirtci's _add_common_params + up():
 * one line per argument (bash printf after the same two expansions). */
static char *through_kubevirtci(const char *extra)
{
        static const char script[] =
            "add() { local params=\"--nodes 1 k8s-1.36 ${EXTRA}\"; echo $params; }\n"
            "params=$(add)\n"
            "eval printf \"'[%s]\\n'\" $params\n";
        char *env_extra = strdup_printf("EXTRA=%s", extra);
        char *const argv[] = {"bash", "-c", (char *)script, NULL};
        char *const env[] = {env_extra, NULL};
        struct proc_opts o = {
            .argv = argv, .env_set = env, .out = PROC_CAPTURE, .err = PROC_CAPTURE, .log_fd = -1};
        _cleanup_proc_result_ struct proc_result r = {0};
        assert_int_equal(proc_run(&o, &r), 0);
        assert_int_equal(r.exit_code, 0);
        free(env_extra);
        return buf_steal(&r.out);
}

static void check(const char *user, const char *cfg, const char *want_value, const char *want_argv)
{
        char *v = NULL;
        assert_int_equal(kubevirtci_extra_args(user, cfg, &v), 0);
        assert_string_equal(v, want_value);
        char *got = through_kubevirtci(v);
        assert_string_equal(got, want_argv);
        free(got);
        free(v);
}

static void test_empty(void **state)
{
        (void)state;
        check(NULL, NULL, "--qemu-args '-device virtio-gpu-pci'",
              "[--nodes]\n[1]\n[k8s-1.36]\n[--qemu-args]\n[-device virtio-gpu-pci]\n");
        check("", "", "--qemu-args '-device virtio-gpu-pci'",
              "[--nodes]\n[1]\n[k8s-1.36]\n[--qemu-args]\n[-device virtio-gpu-pci]\n");
}

static void test_user_quoted_args_kept(void **state)
{
        (void)state;
        /* single quotes, double quotes with a space, an = form: each stays
         * one argument, and ours comes after them as one argument */
        check("--kernel-args='console=ttyS0 quiet' --nfs-data \"/srv/my nfs\"", "--enable-ceph",
              "--kernel-args='console=ttyS0 quiet' --nfs-data \"/srv/my nfs\" --enable-ceph "
              "--qemu-args '-device virtio-gpu-pci'",
              "[--nodes]\n[1]\n[k8s-1.36]\n[--kernel-args=console=ttyS0 quiet]\n[--nfs-data]\n"
              "[/srv/my nfs]\n[--enable-ceph]\n[--qemu-args]\n[-device virtio-gpu-pci]\n");
}

static void test_merge_existing_qemu_args(void **state)
{
        (void)state;
        /* separate value */
        check("--qemu-args '-cpu max -smp 2' --enable-istio", NULL,
              "--qemu-args '-cpu max -smp 2 -device virtio-gpu-pci' --enable-istio",
              "[--nodes]\n[1]\n[k8s-1.36]\n[--qemu-args]\n[-cpu max -smp 2 -device "
              "virtio-gpu-pci]\n[--enable-istio]\n");
        /* = form, double quoted */
        check("--qemu-args=\"-m 4G\"", NULL, "'--qemu-args=-m 4G -device virtio-gpu-pci'",
              "[--nodes]\n[1]\n[k8s-1.36]\n[--qemu-args=-m 4G -device virtio-gpu-pci]\n");
        /* the device is there already: not added twice */
        check("--qemu-args '-device virtio-gpu-pci,xres=800'", NULL,
              "--qemu-args '-device virtio-gpu-pci,xres=800'",
              "[--nodes]\n[1]\n[k8s-1.36]\n[--qemu-args]\n[-device virtio-gpu-pci,xres=800]\n");
        /* the user value in the env and another in the config: the last one
         * is what gocli keeps, so that is the one merged */
        check("--qemu-args '-smp 2'", "--qemu-args '-m 8G'",
              "--qemu-args '-smp 2' --qemu-args '-m 8G -device virtio-gpu-pci'",
              "[--nodes]\n[1]\n[k8s-1.36]\n[--qemu-args]\n[-smp 2]\n[--qemu-args]\n[-m 8G -device "
              "virtio-gpu-pci]\n");
}

static void test_bad_quotes(void **state)
{
        (void)state;
        char *v = NULL;
        assert_int_equal(kubevirtci_extra_args("--kernel-args='oops", NULL, &v), -EINVAL);
        assert_null(v);
        assert_int_equal(kubevirtci_extra_args(NULL, "--x \"open", &v), -EINVAL);
        assert_null(v);
}

static void test_paths(void **state)
{
        char dir[] = "/tmp/test-kvci-XXXXXX";
        (void)state;
        unsetenv("KUBEVIRTCI_CONFIG_PATH");
        char *p = kubevirtci_kubeconfig_path("/nonexistent/kubevirtci", "k8s-1.36");
        assert_string_equal(p, "/nonexistent/kubevirtci/_ci-configs/k8s-1.36/.kubeconfig");
        free(p);
        setenv("KUBEVIRTCI_CONFIG_PATH", "/cfg", 1);
        p = kubevirtci_kubeconfig_path("/nonexistent/kubevirtci", "k8s-1.36");
        assert_string_equal(p, "/cfg/k8s-1.36/.kubeconfig");
        free(p);

        /* A kubevirt checkout: its hack/config-kubevirtci.sh sets the path
         * to <checkout>/kubevirtci/_ci-configs, whatever the environment says. */
        assert_non_null(mkdtemp(dir));
        char *hack = strdup_printf("%s/hack", dir),
             *f = strdup_printf("%s/config-kubevirtci.sh", hack);
        char *up = strdup_printf("%s/kubevirtci/cluster-up", dir);
        assert_int_equal(mkdir_p(hack, 0755), 0);
        assert_int_equal(mkdir_p(up, 0755), 0);
        assert_int_equal(write_file_atomic(f, "", 0, 0644), 0);
        p = kubevirtci_config_path(dir);
        char *want = strdup_printf("%s/kubevirtci/_ci-configs", dir);
        assert_string_equal(p, want);
        free(p);
        free(want);
        unsetenv("KUBEVIRTCI_CONFIG_PATH");
        rm_rf(dir);
        free(hack);
        free(f);
        free(up);
}

int main(void)
{
        return run_plain_tests(test_empty, test_user_quoted_args_kept,
                               test_merge_existing_qemu_args, test_bad_quotes, test_paths);
}
