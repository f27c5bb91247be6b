/* vgpuenv config: validate a config file, or print the field reference. */
#include <getopt.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/macro.h"
#include "provision/base/config.h"

static void usage(FILE *out)
{
        fprintf(out, "usage: vgpuenv config check [-c FILE]\n"
                     "       vgpuenv config reference\n\n"
                     "check: parse and validate FILE; errors are file:line:column, exit 2.\n"
                     "reference: every field as Markdown (docs/configuration.md is made of it).\n");
}

int cmd_config(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {}};
        const char *config = NULL;
        int c, r;

        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        if (streq(argv[1], "reference"))
                return config_print_reference(stdout) < 0 ? EXIT_FAIL : EXIT_OK;
        if (!streq(argv[1], "check")) {
                fprintf(stderr, "vgpuenv config: unknown action '%s'\n", argv[1]);
                usage(stderr);
                return EXIT_USAGE;
        }
        optind = 2;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0)
                if ((r = cli_common_option(c, &config, usage)) != CLI_NEXT_OPTION)
                        return r;
        struct config cfg;
        r = config_load(&cfg, config ? config : cli_default_config());
        if (r >= 0)
                printf("%s: ok (cluster %s, provider %s, %u node(s))\n", cfg.path, cfg.name,
                       provider_names[cfg.provider], cfg.nodes.count);
        config_done(&cfg);
        return r >= 0 ? EXIT_OK : r == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
}
