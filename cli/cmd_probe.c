/* vgpuenv probe: run the render-node probe on every node again. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/util.h"
#include "provision/node_setup.h"
#include "provision/orchestrate.h"

static void usage(FILE *out)
{
        fprintf(out,
                "usage: vgpuenv probe [-c FILE] [--json] [-v] [-q]\n\n"
                "Copy vgpuenv-probe to every node and run it: render node present, GBM\n"
                "device, EGL initialized on it, EGL_MESA_image_dma_buf_export, one dmabuf\n"
                "exported. Exit 0 only when every check passes on every node.\n\n"
                "  -c, --config FILE  cluster config (default %s)\n"
                "  -j, --json         verdicts as JSON on stdout\n",
                cli_default_config());
}

static int run_probe(struct run_ctx *ctx, bool json)
{
        cJSON *verdicts = NULL;
        int r = provision_probe(ctx, &verdicts);

        if (verdicts && json)
                cli_print_json(verdicts);
        else if (verdicts)
                node_verdicts_print(verdicts, stdout);
        cJSON_Delete(verdicts);
        return r;
}

const struct cli_session_command cli_probe = {.name = "probe",
                                              .usage = usage,
                                              .flag = CLI_FLAG_JSON,
                                              .watches_ctrl_c = true,
                                              .run = run_probe};
