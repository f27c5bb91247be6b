/* What a developer needs to see why a MediatedDevices test failed, collected
 * after a failed or interrupted run into <run>/collected/:
 *   virt-launcher-pods.json        the launcher pods (kubectl get -o json)
 *   pods/NS_POD.log|.yaml          logs of every container, the pod spec
 *   pods/NS_POD.domain.xml         virsh dumpxml of the domain in the launcher
 *   pods/NS_POD.qemu.log           libvirt's QEMU log in the launcher
 *   vmis.yaml, events.txt          VMI objects and cluster events
 *   webhook/NS_POD.log             mesa-injector's log
 *   nodes/NAME.probe.txt           render node, modules, mdev types (ssh)
 *   commands.txt                   every command run and its exit status
 * Every step is best effort: a failing kubectl is recorded and the next
 * step still runs, because a broken cluster is exactly when this matters. */
#pragma once

#include <stdbool.h>

struct cancel;
struct state;

struct collect_opts {
        const char *kubectl;    /* program, default "kubectl" */
        const char *kubeconfig; /* passed as KUBECONFIG */
        const char *out_dir;    /* <run>/collected */
        struct state *state;    /* nodes to probe over ssh, or NULL */
        double timeout;         /* per command, seconds (default 120) */
        /* Fired: stop the current command and skip the rest; a Ctrl-C
         * during collection keeps what was collected so far. */
        const struct cancel *cancel;
        int log_fd; /* the commands' output into the run's log; -1 none */
};

/* The label of mesa-injector's pods (webhook/deploy). */
#define COLLECT_WEBHOOK_SELECTOR "app.kubernetes.io/name=mesa-injector"

/* Returns 0, or a negative errno when out_dir cannot be written (logged);
 * failures of single commands are only recorded in commands.txt. *ret_files
 * (optional) gets the number of files written. */
int collect_artifacts(const struct collect_opts *o, unsigned *ret_files);
