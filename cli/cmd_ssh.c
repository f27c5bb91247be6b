/* vgpuenv ssh: a shell or a command on a node, with the pinned host key. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"

static void usage(FILE *out)
{
        fprintf(out,
                "usage: vgpuenv ssh [-c FILE] [-n] NODE [-- COMMAND [ARG...]]\n\n"
                "Open a shell on NODE (e.g. node1 or vgpuenv-node1), or run COMMAND there\n"
                "with its arguments quoted as given; exits with the command's status.\n"
                "Like ssh(1), standard input is forwarded to COMMAND (cat > f < file works).\n"
                "The node's host key is the one vgpuenv injected: a changed key is refused.\n\n"
                "  -c, --config FILE  cluster config (default %s)\n"
                "  -n                 standard input from /dev/null (like ssh -n)\n",
                cli_default_config());
}

static const struct node_target *find_node(const struct node_target *t, size_t n, const char *want)
{
        for (size_t i = 0; i < n; i++) {
                const char *name = t[i].name;
                const char *dash = strrchr(name, '-');
                if (streq(name, want) || (dash && streq(dash + 1, want)))
                        return &t[i];
        }
        return NULL;
}

int cmd_ssh(int argc, char **argv)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                             {"no-stdin", no_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {}};
        bool no_stdin = false;
        const char *config = NULL;
        struct cli_session s;
        struct state st = {0};
        _cleanup_free_ struct node_target *targets = NULL;
        size_t n = 0;
        struct ssh_node *node = NULL;
        int c, r;

        /* '+': stop at the first non-option so the remote command keeps its own. */
        while ((c = getopt_long(argc, argv, "+c:nh", opts, NULL)) >= 0)
                if (c == 'n')
                        no_stdin = true;
                else if ((r = cli_common_option(c, &config, usage)) != CLI_NEXT_OPTION)
                        return r;
        if (optind >= argc) {
                fprintf(stderr, "vgpuenv ssh: which node?\n");
                usage(stderr);
                return EXIT_USAGE;
        }
        const char *want = argv[optind++];
        if (optind < argc && streq(argv[optind], "--"))
                optind++;
        r = cli_session_open(&s, config);
        if (r != EXIT_OK) {
                cli_session_close(&s);
                return r;
        }
        r = cli_open_cluster_state(&s, &st, false);
        if (r >= 0)
                r = state_get_nodes(&st, &targets, &n);
        const struct node_target *t = r >= 0 ? find_node(targets, n, want) : NULL;
        if (r >= 0 && !t) {
                log_error("no node '%s' in cluster %s (%zu node(s))", want, s.cfg.name, n);
                r = -ENOENT;
        }
        if (t) {
                struct node_target tt = *t;
                tt.cancel = &s.ctx.cancel;
                r = ssh_node_connect(&tt, 30, &node);
        }
        if (r >= 0) {
                bool shell = optind >= argc;
                char *none[] = {NULL};
                enum ssh_stdin in = no_stdin             ? SSH_STDIN_NONE
                                    : shell && isatty(0) ? SSH_STDIN_TTY
                                                         : SSH_STDIN_FORWARD;
                r = ssh_node_run_streaming(node, shell ? none : argv + optind, in);
        }
        ssh_node_free(node);
        state_done(&st);
        cli_session_close(&s);
        if (r < 0)
                return EXIT_FAIL;
        return r; /* the remote command's exit status */
}
