/* The cluster rules of KubeVirt's MediatedDevices tests (see cluster_check.h). */
#include "e2e/cluster_check.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "provision/base/context.h"

#define NODE_SCHEDULABLE "kubevirt.io/schedulable=true" /* v1.NodeSchedulable */
#define TEST_NS_PREFIX "kubevirt-test-"
/* The text ginkgo matches --focus against: the suite description, then the
 * container texts (internal/focus.go; tests/tests_suite_test.go). */
#define MDEV_SPEC_TEXT "KubeVirt Tests Suite [sig-compute]MediatedDevices"
#define NAMES_JSONPATH "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}"
#define KV_JSONPATH "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}"

static bool regex_matches(const char *re, const char *text, bool if_broken)
{
        regex_t rx;
        bool m;

        if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
                return if_broken;
        m = regexec(&rx, text, 0, NULL, 0) == 0;
        regfree(&rx);
        return m;
}

bool e2e_focus_selects_mdev(const char *focus, const char *skip)
{
        if (!isempty(focus) && !regex_matches(focus, MDEV_SPEC_TEXT, true))
                return false;
        return isempty(skip) || !regex_matches(skip, MDEV_SPEC_TEXT, false);
}

/* kubectl ARGS...; the lines of its output in *ret (NULL in a dry run).
 * -EIO (logged with kubectl's message) when it failed, -ENOENT when the
 * resource type does not exist (KubeVirt not installed). */
static int kubectl_lines(const struct cluster_check *cc, const char *what, char ***ret,
                         const char *const *args)
{
        _cleanup_strv_free_ char **argv = NULL;
        struct spawn_result res = {0};
        int r = 0;

        *ret = NULL;
        r |= strv_extend(&argv, cc->kubectl);
        r |= strv_extend(&argv, "--kubeconfig");
        r |= strv_extend(&argv, cc->kubeconfig);
        r |= strv_extend(&argv, "--request-timeout=60s");
        for (size_t i = 0; args[i]; i++)
                r |= strv_extend(&argv, args[i]);
        if (r < 0)
                return log_error_errno(ENOMEM, "Out of memory");
        r = ctx_run(cc->ctx, what, argv, NULL, NULL, &res);
        if (r >= 0 && !cc->ctx->dry_run && res.exit_code != 0) {
                bool missing =
                    res.err && strstr(res.err, "the server doesn't have a resource type");
                r = missing ? -ENOENT
                            : log_error_errno(EIO, "%s: kubectl exited with %d: %s", what,
                                              res.exit_code, res.err ? res.err : "");
        }
        for (char *save = NULL, *t = r >= 0 && res.out ? strtok_r(res.out, "\n", &save) : NULL; t;
             t = strtok_r(NULL, "\n", &save))
                if (!isempty(t) && strv_extend(ret, t) < 0)
                        r = log_error_errno(ENOMEM, "Out of memory");
        spawn_result_done(&res);
        return r;
}

/* -ENOENT, not logged, when KubeVirt is not installed at all. */
static int check_kubevirt_cr(const struct cluster_check *cc)
{
        static const char *const args[] = {"get", "kubevirts", "--all-namespaces",
                                           "-o",  KV_JSONPATH, NULL};
        _cleanup_strv_free_ char **crs = NULL;
        _cleanup_free_ char *list = NULL;
        int r = kubectl_lines(cc, "kubectl get kubevirts", &crs, args);

        if (r < 0 || cc->ctx->dry_run || strv_length(crs) == 1)
                return r;
        list = strv_join(crs, ", ");
        if (!crs)
                return log_error_errno(EUCLEAN, "The cluster has no KubeVirt CR: KubeVirt's suite "
                                                "needs exactly one (libkubevirt.GetCurrentKv "
                                                "expects HaveLen(1)); deploy KubeVirt first");
        return log_error_errno(EUCLEAN,
                               "The cluster has %zu KubeVirt CRs (%s): KubeVirt's suite needs "
                               "exactly one (libkubevirt.GetCurrentKv expects HaveLen(1))",
                               strv_length(crs), list ? list : "");
}

static int check_schedulable(const struct cluster_check *cc)
{
        static const char *const args[] = {"get", "nodes",        "-l", NODE_SCHEDULABLE,
                                           "-o",  NAMES_JSONPATH, NULL};
        _cleanup_strv_free_ char **nodes = NULL;
        _cleanup_free_ char *list = NULL;
        int r = kubectl_lines(cc, "kubectl get schedulable nodes", &nodes, args);

        if (r < 0 || cc->ctx->dry_run || strv_length(nodes) == 1)
                return r < 0 ? r : 0;
        if (!nodes)
                return log_error_errno(EUCLEAN,
                                       "No node is labelled " NODE_SCHEDULABLE ": virt-handler "
                                       "labels the nodes it runs on; is KubeVirt up (kubectl get "
                                       "pods -n kubevirt)?");
        list = strv_join(nodes, ", ");
        return log_error_errno(EUCLEAN,
                               "%zu nodes are labelled " NODE_SCHEDULABLE " (%s), but KubeVirt's "
                               "MediatedDevices tests need exactly one (their BeforeEach: "
                               "libnode.GetAllSchedulableNodes ... HaveLen(1)). Run them on a "
                               "single-node cluster (nodes.count: 1, KUBEVIRT_NUM_NODES=1) or "
                               "--skip MediatedDevices.",
                               strv_length(nodes), list ? list : "");
}

static int delete_namespaces(const struct cluster_check *cc, char *const *ns)
{
        _cleanup_strv_free_ char **argv = NULL;
        int r = 0;

        r |= strv_extend(&argv, cc->kubectl);
        r |= strv_extend(&argv, "--kubeconfig");
        r |= strv_extend(&argv, cc->kubeconfig);
        r |= strv_extend(&argv, "delete");
        r |= strv_extend(&argv, "namespace");
        for (size_t i = 0; ns[i]; i++)
                r |= strv_extend(&argv, ns[i]);
        r |= strv_extend(&argv, "--wait=true");
        r |= strv_extend(&argv, "--timeout=300s");
        if (r < 0)
                return log_error_errno(ENOMEM, "Out of memory");
        log_info("Deleting the namespaces an earlier run left ...");
        return ctx_run(cc->ctx, "kubectl delete namespace", argv, NULL, NULL, NULL);
}

static int check_leftovers(const struct cluster_check *cc)
{
        static const char *const args[] = {"get", "namespaces", "-o", NAMES_JSONPATH, NULL};
        _cleanup_strv_free_ char **all = NULL, **left = NULL;
        _cleanup_free_ char *list = NULL;
        int r = kubectl_lines(cc, "kubectl get namespaces", &all, args);

        if (r < 0)
                return r;
        for (size_t i = 0; all && all[i]; i++)
                if (startswith(all[i], TEST_NS_PREFIX) && strv_extend(&left, all[i]) < 0)
                        return log_error_errno(ENOMEM, "Out of memory");
        if (!left)
                return 0;
        if (cc->delete_leftovers)
                return delete_namespaces(cc, left);
        list = strv_join(left, " ");
        return log_error_errno(EUCLEAN,
                               "Namespaces of an earlier, interrupted run are still there: %s. "
                               "KubeVirt's BeforeSuite creates them and fails if they exist. "
                               "Remove them with `%s --kubeconfig %s delete namespace %s` or "
                               "run again with --delete-leftover-namespaces.",
                               list ? list : "", cc->kubectl, cc->kubeconfig, list ? list : "");
}

int e2e_cluster_preflight(const struct cluster_check *cc)
{
        int r = check_kubevirt_cr(cc), q;

        if (r == -ENOENT)
                return log_error_errno(EUCLEAN,
                                       "KubeVirt is not installed in this cluster (no kubevirts "
                                       "resource type): deploy it first (e.g. `make "
                                       "cluster-sync` in the KubeVirt checkout)");
        if (e2e_focus_selects_mdev(cc->focus, cc->skip) && (q = check_schedulable(cc)) < 0 &&
            r >= 0)
                r = q;
        if ((q = check_leftovers(cc)) < 0 && r >= 0)
                r = q;
        return r;
}

int e2e_cluster_check_after_up(struct run_ctx *ctx, const char *kubeconfig)
{
        struct cluster_check cc = {
            .ctx = ctx,
            .kubectl = ctx->cfg->kubevirt.kubectl,
            .kubeconfig = kubeconfig,
        };
        int r = check_kubevirt_cr(&cc);

        if (r == -ENOENT)
                return 0; /* configure_kubevirt said when to run up again */
        if (r >= 0)
                r = check_schedulable(&cc);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_warning("The cluster is up, but KubeVirt's MediatedDevices tests will fail on "
                            "it as it is (see above); `vgpuenv e2e run` stops on this too.");
        return 0;
}
