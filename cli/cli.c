/* Shared plumbing for subcommands (see cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/log.h"
#include "common/util.h"
#include "provision/base/state.h"

const char *cli_default_config(void)
{
        const char *e = getenv("VGPUENV_CONFIG");

        return e && *e ? e : "configs/local.yaml";
}

int cli_session_open(struct cli_session *s, const char *config_path)
{
        int r;

        memset(s, 0, sizeof(*s));
        r = config_load(&s->cfg, config_path ? config_path : cli_default_config());
        if (r < 0)
                return r == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
        r = run_ctx_init(&s->ctx, &s->cfg);
        s->ctx.verbose = log_get_level() >= LOG_DEBUG;
        if (r < 0) {
                log_error_errno(r, "setting up: %m");
                return EXIT_FAIL;
        }
        s->have_ctx = true;
        return EXIT_OK;
}

void cli_session_close(struct cli_session *s)
{
        if (s->have_ctx)
                run_ctx_done(&s->ctx);
        config_done(&s->cfg);
}

int cli_exit_code(int r)
{
        if (r >= 0)
                return EXIT_OK;
        if (r == -ECANCELED)
                return 130;
        return EXIT_FAIL;
}

int cli_common_option(int c, const char **config, void (*usage)(FILE *))
{
        switch (c) {
        case 'c':
                *config = optarg;
                return CLI_NEXT_OPTION;
        case 'v':
                cli_verbosity(+1);
                return CLI_NEXT_OPTION;
        case 'q':
                cli_verbosity(-1);
                return CLI_NEXT_OPTION;
        case 'h':
                usage(stdout);
                return EXIT_OK;
        default:
                usage(stderr);
                return EXIT_USAGE;
        }
}

int cli_run_session_command(const struct cli_session_command *cmd, int argc, char **argv, int first)
{
        const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                      {"verbose", no_argument, NULL, 'v'},
                                      {"quiet", no_argument, NULL, 'q'},
                                      {"help", no_argument, NULL, 'h'},
                                      {cmd->flag_long, no_argument, NULL, cmd->flag_short},
                                      {}};
        char shortopts[8] = "c:vqh";
        const char *config = NULL;
        bool flag = false;
        struct cli_session s;
        int c, r;

        if (cmd->flag_long)
                shortopts[5] = cmd->flag_short;
        optind = first;
        while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) >= 0)
                if (cmd->flag_long && c == cmd->flag_short)
                        flag = true;
                else if ((r = cli_common_option(c, &config, cmd->usage)) != CLI_NEXT_OPTION)
                        return r;
        if (optind < argc) {
                fprintf(stderr, "vgpuenv %s: unexpected argument '%s'\n", cmd->name, argv[optind]);
                cmd->usage(stderr);
                return EXIT_USAGE;
        }
        r = cli_session_open(&s, config);
        if (r == EXIT_OK)
                r = cli_exit_code(cmd->run(&s, flag));
        cli_session_close(&s);
        return r;
}

void cli_verbosity(int delta)
{
        int l = (int)log_get_level() + delta;

        if (l < LOG_ERR)
                l = LOG_ERR;
        if (l > LOG_DEBUG)
                l = LOG_DEBUG;
        log_set_level((enum log_level)l);
}

int cli_open_cluster_state(struct cli_session *s, struct state *st, bool quiet)
{
        _cleanup_free_ char *path = strdup_printf("%s/state.json", s->ctx.state_dir);
        int r;

        if (!path)
                return log_error_errno(ENOMEM, "out of memory");
        if (!file_exists(path)) {
                if (!quiet)
                        log_error("cluster %s is not up (no %s): run 'vgpuenv up -c %s' first",
                                  s->cfg.name, path, s->cfg.path);
                return -ENOENT;
        }
        r = state_peek(st, s->ctx.state_dir, s->cfg.name, provider_names[s->cfg.provider]);
        return r < 0 ? log_error_errno(r, "opening the state of cluster %s: %m", s->cfg.name) : 0;
}

void cli_print_json(const cJSON *j)
{
        _cleanup_free_ char *t = j ? cJSON_Print(j) : NULL;

        if (t)
                printf("%s\n", t);
}
