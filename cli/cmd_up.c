/* vgpuenv up: bring the cluster up, end with every node's probe verdict. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "provision/orchestrate.h"

static void usage(FILE *out)
{
        fprintf(out,
                "usage: vgpuenv up [-c FILE] [--dry-run] [-v] [-q]\n\n"
                "Build or reuse the node image, bring the nodes up with a virtio-gpu device,\n"
                "set them up over ssh and run the render-node probe on each. Idempotent:\n"
                "running it again converges; after a crash it resumes from the state file.\n"
                "A failure or Ctrl-C removes what this run created.\n\n"
                "  -c, --config FILE  cluster config (default %s)\n"
                "  -n, --dry-run      validate the config and print the plan: every step `up`\n"
                "                     runs, in order, with what it acts on, its deadline,\n"
                "                     its undo and its details; create nothing\n"
                "  -v, --verbose      more output (the programs' output too; it always goes to\n"
                "                     the run's log);  -q, --quiet  less\n"
                "exit: 0 all probes passed, 1 failure, 2 bad usage or config, 130 interrupted\n",
                cli_default_config());
}

static int run_up(struct cli_session *s, bool dry_run)
{
        if (!dry_run && run_ctx_watch_signals(&s->ctx, CANCEL_SECOND_EXITS) < 0)
                return -EIO;
        return provision_up(&s->ctx, dry_run);
}

int cmd_up(int argc, char **argv)
{
        static const struct cli_session_command cmd = {
            .name = "up", .usage = usage, .flag_long = "dry-run", .flag_short = 'n', .run = run_up};
        return cli_run_session_command(&cmd, argc, argv, 1);
}
