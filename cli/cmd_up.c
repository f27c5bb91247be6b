/* vgpuenv up: bring the cluster up, end with every node's probe verdict. */
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

int cmd_up(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'}, {"dry-run", no_argument, NULL, 'n'},
            {"verbose", no_argument, NULL, 'v'},      {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},         {}};
        const char *config = NULL;
        bool dry_run = false;
        struct cli_session s;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:nvqh", opts, NULL)) >= 0)
                if (c == 'n')
                        dry_run = true;
                else if ((r = cli_common_option(c, &config, usage)) != CLI_NEXT_OPTION)
                        return r;
        if (optind < argc) {
                fprintf(stderr, "vgpuenv up: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return EXIT_USAGE;
        }
        r = cli_session_open(&s, config);
        if (r != EXIT_OK) {
                cli_session_close(&s);
                return r;
        }
        if (!dry_run && run_ctx_watch_signals(&s.ctx, CANCEL_SECOND_EXITS) < 0) {
                cli_session_close(&s);
                return EXIT_FAIL;
        }
        r = provision_up(&s.ctx, dry_run);
        cli_session_close(&s);
        return cli_exit_code(r);
}
