/* vgpuenv down: remove exactly what up created. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "provision/orchestrate.h"

static void usage(FILE *out)
{
        fprintf(out,
                "usage: vgpuenv down [-c FILE] [--dry-run] [-v] [-q]\n\n"
                "Remove every object the state file lists for this cluster (domains,\n"
                "volumes, storage pool, network) after checking each carries vgpuenv's\n"
                "ownership mark, then the state itself. Objects of other clusters and\n"
                "anything vgpuenv did not create are left alone.\n\n"
                "  -c, --config FILE  cluster config (default %s)\n"
                "  -n, --dry-run      print what would be removed\n",
                cli_default_config());
}

const struct cli_session_command cli_down = {.name = "down",
                                             .usage = usage,
                                             .flag = CLI_FLAG_DRY_RUN,
                                             .watches_ctrl_c = true,
                                             .run = provision_down};
