/* vgpuenv up: bring the cluster up, end with every node's probe verdict. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/commands.h"
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

const struct cli_session_command cli_up = {.name = "up",
                                           .usage = usage,
                                           .flag = CLI_FLAG_DRY_RUN,
                                           .watches_ctrl_c = true,
                                           .run = provision_up};
