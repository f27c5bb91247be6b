/* cluster-setup-tool: runs cluster setup's plan steps
 * (provision/cluster_setup.c) the way `vgpuenv up` does after the nodes are
 * up (labels, webhook, KubeVirt CR, the MediatedDevices rules), against any kubeconfig, so that
 * tests/integration/k8s_cluster_setup.sh drives its kubectl calls against
 * the real API server of the test harness (tests/k8s/).
 *
 *   cluster-setup-tool CONFIG STATE.json KUBECONFIG BUILD_DIR
 *
 * CONFIG is a vgpuenv config file; STATE.json holds the "nodes" array as the
 * state records it (name, probe_ok); BUILD_DIR is where mesa-injector is.
 * The state directory is $VGPUENV_STATE_DIR/<name>, as for `vgpuenv up`.
 * Exit 0 when cluster setup succeeds, 1 when it fails, 2 on bad arguments. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "provision/base/context.h"
#include "provision/base/plan.h"
#include "provision/base/state.h"
#include "provision/cluster_setup.h"

int main(int argc, char **argv)
{
        if (argc != 5) {
                fprintf(stderr,
                        "usage: cluster-setup-tool CONFIG STATE.json KUBECONFIG BUILD_DIR\n");
                return 2;
        }
        struct config cfg;
        if (config_load(&cfg, argv[1]) < 0)
                return 2;
        _cleanup_free_ char *text = NULL;
        int r = read_full_file(argv[2], &text, NULL);
        if (r < 0) {
                log_error_errno(r, "cannot read %s", argv[2]);
                config_done(&cfg);
                return 2;
        }
        struct run_ctx ctx;
        r = run_ctx_init(&ctx, &cfg);
        if (r >= 0) {
                free(ctx.build_dir);
                ctx.build_dir = strdup(argv[4]);
                r = ctx.build_dir ? mkdir_p(ctx.state_dir, 0700) : -ENOMEM;
        }
        struct state st = {.root = cJSON_Parse(text)};
        if (r >= 0 && !st.root)
                r = log_error_errno(-EINVAL, "%s is not JSON", argv[2]);
        struct plan *p = r >= 0 ? plan_new("cluster setup") : NULL;
        if (r >= 0 && !p)
                r = log_error_errno(ENOMEM, "out of memory");
        if (r >= 0)
                r = cluster_setup_plan(p, &ctx, argv[3], true, true);
        if (r >= 0)
                r = plan_run(p, &ctx, &st, NULL);
        plan_free(p);
        cJSON_Delete(st.root);
        run_ctx_done(&ctx);
        config_done(&cfg);
        return r < 0 ? 1 : 0;
}
