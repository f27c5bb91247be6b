/* The cluster rules of KubeVirt's MediatedDevices tests (see cluster_check.h). */
#include "provision/cluster_check.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "common/cancel.h"
#include "common/proc.h"

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

bool focus_selects_mdev(const char *focus, const char *skip)
{
        if (!isempty(focus) && !regex_matches(focus, MDEV_SPEC_TEXT, true))
                return false;
        return isempty(skip) || !regex_matches(skip, MDEV_SPEC_TEXT, false);
}

/* kubectl --kubeconfig K ARGS... under the check's token and deadline. */
int cluster_kubectl_run(const struct cluster_check *cc, const char *what, const char *const *args,
                        struct proc_result *res)
{
        _cleanup_strv_free_ char **argv = NULL;
        struct cancel token;
        int r = 0;

        r |= strv_extend(&argv, cc->kubectl);
        r |= strv_extend(&argv, "--kubeconfig");
        r |= strv_extend(&argv, cc->kubeconfig);
        r |= strv_extend(&argv, "--request-timeout=60s");
        for (size_t i = 0; args[i]; i++)
                r |= strv_extend(&argv, args[i]);
        if (r < 0)
                return log_error_errno(ENOMEM, "Out of memory");
        cancel_init_child(&token, cc->cancel, cc->kubectl_deadline, what);
        struct proc_opts o = {
            .argv = argv,
            .out = PROC_CAPTURE,
            .err = PROC_CAPTURE,
            .log_fd = cc->log_fd,
            .log_prefix = what,
            .cancel = &token,
        };
        r = proc_run(&o, res);
        if (r == -ENOENT)
                return log_error_errno(ENOENT, "%s: %s not found", what, cc->kubectl);
        if (r < 0)
                return log_error_errno(-r, "%s: could not start %s: %m", what, cc->kubectl);
        if (res->stopped_by == -ETIMEDOUT)
                return log_error_errno(ETIMEDOUT, "%s: no answer within %.0f s (deadlines.kubectl)",
                                       what, cc->kubectl_deadline);
        if (res->stopped_by < 0)
                return res->stopped_by;
        return 0;
}

/* kubectl ARGS...; the lines of its output in *ret. -EIO (logged with
 * kubectl's message) when it failed, -ENOENT when the resource type does
 * not exist (KubeVirt not installed). */
static int kubectl_lines(const struct cluster_check *cc, const char *what, char ***ret,
                         const char *const *args)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        int r;

        *ret = NULL;
        r = cluster_kubectl_run(cc, what, args, &res);
        if (r < 0)
                return r;
        if (res.exit_code != 0) {
                const char *err = res.err.data ? res.err.data : "";
                if (strstr(err, "the server doesn't have a resource type"))
                        return -ENOENT;
                return log_error_errno(EIO, "%s: kubectl exited with %d: %s", what, res.exit_code,
                                       err);
        }
        for (char *save = NULL, *t = res.out.data ? strtok_r(res.out.data, "\n", &save) : NULL; t;
             t = strtok_r(NULL, "\n", &save))
                if (!isempty(t) && strv_extend(ret, t) < 0)
                        return log_error_errno(ENOMEM, "Out of memory");
        return 0;
}

/* -ENOENT, not logged, when KubeVirt is not installed at all. */
static int check_kubevirt_cr(const struct cluster_check *cc)
{
        static const char *const args[] = {"get", "kubevirts", "--all-namespaces",
                                           "-o",  KV_JSONPATH, NULL};
        _cleanup_strv_free_ char **crs = NULL;
        _cleanup_free_ char *list = NULL;
        int r = kubectl_lines(cc, "kubectl get kubevirts", &crs, args);

        if (r < 0 || strv_length(crs) == 1)
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

        if (r < 0 || strv_length(nodes) == 1)
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
        return proc_run_checked("kubectl delete namespace", argv, cc->cancel, cc->log_fd, NULL);
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

int cluster_preflight(const struct cluster_check *cc)
{
        int r = check_kubevirt_cr(cc), q;

        if (r == -ENOENT)
                return log_error_errno(EUCLEAN,
                                       "KubeVirt is not installed in this cluster (no kubevirts "
                                       "resource type): deploy it first (e.g. `make "
                                       "cluster-sync` in the KubeVirt checkout)");
        if (focus_selects_mdev(cc->focus, cc->skip) && (q = check_schedulable(cc)) < 0 && r >= 0)
                r = q;
        if ((q = check_leftovers(cc)) < 0 && r >= 0)
                r = q;
        return r;
}

int cluster_check_after_up(const struct cluster_check *cc)
{
        int r = check_kubevirt_cr(cc);

        if (r == -ENOENT)
                return 0; /* the kubevirt-cr step said when to run up again */
        if (r >= 0)
                r = check_schedulable(cc);
        if (r == -ENOMEM || r == -ECANCELED || r == -ETIMEDOUT)
                return r;
        if (r < 0)
                log_warning("The cluster is up, but KubeVirt's MediatedDevices tests will fail on "
                            "it as it is (see above); `vgpuenv e2e run` stops on this too.");
        return 0;
}
