/* vgpuenv down: remove exactly what up created. */
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

int cmd_down(int argc, char **argv)
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
                fprintf(stderr, "vgpuenv down: unexpected argument '%s'\n", argv[optind]);
                return EXIT_USAGE;
        }
        r = cli_session_open(&s, config);
        if (r == EXIT_OK && !dry_run && run_ctx_watch_signals(&s.ctx, CANCEL_SECOND_EXITS) < 0)
                r = EXIT_FAIL;
        if (r == EXIT_OK)
                r = cli_exit_code(provision_down(&s.ctx, dry_run));
        cli_session_close(&s);
        return r;
}
