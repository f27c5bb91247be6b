/* vgpuenv down: remove exactly what up created. */
#include <errno.h>
#include <getopt.h>
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

static int run_down(struct cli_session *s, bool dry_run)
{
        if (!dry_run && run_ctx_watch_signals(&s->ctx, CANCEL_SECOND_EXITS) < 0)
                return -EIO;
        return provision_down(&s->ctx, dry_run);
}

int cmd_down(int argc, char **argv)
{
        static const struct cli_session_command cmd = {.name = "down",
                                                       .usage = usage,
                                                       .flag_long = "dry-run",
                                                       .flag_short = 'n',
                                                       .run = run_down};
        return cli_run_session_command(&cmd, argc, argv, 1);
}
