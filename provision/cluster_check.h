/* What KubeVirt's MediatedDevices tests demand of the cluster, checked
 * before they run (kubevirt main d923fdb):
 * - exactly one KubeVirt CR (tests/libkubevirt GetCurrentKv: HaveLen(1));
 * - for the MediatedDevices focus, exactly one node labelled
 *   kubevirt.io/schedulable=true (their BeforeEach:
 *   libnode.GetAllSchedulableNodes ... Expect(nodes).To(HaveLen(1)));
 * - no kubevirt-test-* namespace left by an interrupted run: BeforeSuite
 *   creates kubevirt-test-default1, -alternative1, -operator1,
 *   -privileged1 (testsuite.CalculateNamespaces appends the ginkgo
 *   process) and fails when one exists.
 * Every query is one kubectl call with deadlines.kubectl, under the
 * caller's cancel token; `up` runs the after-up check as its plan step
 * "mdev-rules", `e2e run` the preflight before the suite starts. */
#pragma once

#include <stdbool.h>

struct cancel;

struct cluster_check {
        const struct cancel *cancel; /* Ctrl-C / the step's deadline */
        int log_fd;                  /* kubectl's output into the run's log; -1 none */
        double kubectl_deadline;     /* seconds per kubectl call; 0 none */
        const char *kubectl;         /* program */
        const char *kubeconfig;      /* the suite's */
        const char *focus, *skip;
        bool delete_leftovers; /* remove kubevirt-test-* namespaces instead of stopping */
};

/* Would the focus/skip regexes select KubeVirt's MediatedDevices specs?
 * (POSIX extended regexes stand in for Go's RE2; one that does not compile
 * is assumed to select them.) */
bool focus_selects_mdev(const char *focus, const char *skip);

/* Before `e2e run` starts the suite: each broken rule is logged with the
 * nodes, CRs or namespaces involved and what to do; returns -EUCLEAN when
 * one is broken, -EIO when kubectl could not tell. */
int cluster_preflight(const struct cluster_check *cc);

/* After `vgpuenv up` configured KubeVirt: the same CR and node rules for the
 * MediatedDevices focus, reported as warnings (up does not fail on them: the
 * user may still relabel or scale the cluster). Returns 0, or -ENOMEM /
 * -ECANCELED / -ETIMEDOUT. */
int cluster_check_after_up(const struct cluster_check *cc);

struct proc_result;
/* One kubectl call as these checks make it (--request-timeout, the token,
 * deadline and log of cc); res gets the whole result, the caller judges the
 * exit status. 0, or -ENOENT (no kubectl) / -ETIMEDOUT / -ECANCELED. */
int cluster_kubectl_run(const struct cluster_check *cc, const char *what, const char *const *args,
                        struct proc_result *res);
