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

static int run_probe(struct cli_session *s, bool json)
{
        cJSON *verdicts = NULL;
        int r = run_ctx_watch_signals(&s->ctx, CANCEL_SECOND_EXITS);

        if (r >= 0)
                r = provision_probe(&s->ctx, &verdicts);
        if (verdicts && json)
                cli_print_json(verdicts);
        else if (verdicts)
                node_verdicts_print(verdicts, stdout);
        cJSON_Delete(verdicts);
        return r;
}

int cmd_probe(int argc, char **argv)
{
        static const struct cli_session_command cmd = {.name = "probe",
                                                       .usage = usage,
                                                       .flag_long = "json",
                                                       .flag_short = 'j',
                                                       .run = run_probe};
        return cli_run_session_command(&cmd, argc, argv, 1);
}
