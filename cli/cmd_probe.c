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
                "usage: vgpuenv probe [-c FILE] [--json]\n\n"
                "Copy vgpuenv-probe to every node and run it: render node present, GBM\n"
                "device, EGL initialized on it, EGL_MESA_image_dma_buf_export, one dmabuf\n"
                "exported. Exit 0 only when every check passes on every node.\n\n"
                "  -c, --config FILE  cluster config (default %s)\n"
                "  -j, --json         verdicts as JSON on stdout\n",
                cli_default_config());
}

int cmd_probe(int argc, char **argv)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {}};
        const char *config = NULL;
        bool json = false;
        struct cli_session s;
        cJSON *verdicts = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:jh", opts, NULL)) >= 0)
                if (c == 'j')
                        json = true;
                else if ((r = cli_common_option(c, &config, usage)) != CLI_NEXT_OPTION)
                        return r;
        r = cli_session_open(&s, config);
        if (r != EXIT_OK) {
                cli_session_close(&s);
                return r;
        }
        r = run_ctx_watch_signals(&s.ctx, CANCEL_SECOND_EXITS);
        if (r >= 0)
                r = provision_probe(&s.ctx, &verdicts);
        if (verdicts) {
                if (json)
                        cli_print_json(verdicts);
                else
                        node_verdicts_print(verdicts, stdout);
        }
        cJSON_Delete(verdicts);
        cli_session_close(&s);
        return cli_exit_code(r);
}
