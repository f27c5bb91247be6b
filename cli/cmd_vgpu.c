/* vgpuenv vgpu: the fake NVIDIA T4 vGPU on one node or on this host (the
 * Kind host): what it offers, set it up as node setup does, unload it.
 * provision/vgpu/ does the work. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"
#include "provision/vgpu/vgpu.h"

static void usage(FILE *out)
{
        fprintf(out,
                "usage: vgpuenv vgpu [-c FILE] status|load|unload [--host | NODE] [options]\n\n"
                "The fake NVIDIA T4 vGPU (mdev types nvidia-222 \"GRID T4-1B\" and nvidia-223\n"
                "\"GRID T4-2B\") on NODE (default: the cluster's first node) or, with --host,\n"
                "on this machine, whose kernel Kind nodes share.\n\n"
                "  status             the module, its display, the parents and their types\n"
                "  load               build (cached), install and load it as node setup does\n"
                "  unload             unload it; refused while mdev instances of it exist\n\n"
                "  -c, --config FILE  cluster config (default %s)\n"
                "      --host         this machine instead of a node (needs root)\n"
                "      --display MODE load: dmabuf or region (default: the config's vgpu:)\n"
                "  -j, --json         load: the verdict as JSON on stdout\n",
                cli_default_config());
}

struct target {
        struct node_io io;
        struct ssh_node *ssh;
        char *name;
};

static int open_target(struct cli_session *s, struct state *st, const char *want, bool host,
                       struct target *t)
{
        _cleanup_free_ struct node_target *targets = NULL;
        size_t n = 0;
        int r;

        if (host) {
                vgpu_local_io(&s->ctx.cancel, &t->io);
                t->name = strdup("host");
                return t->name ? 0 : -ENOMEM;
        }
        r = cli_open_cluster_state(s, st, false);
        if (r < 0)
                return r;
        r = state_get_nodes(st, &targets, &n);
        if (r < 0)
                return log_error_errno(r, "reading the cluster's nodes: %m");
        for (size_t i = 0; i < n; i++) {
                const char *dash = strrchr(targets[i].name, '-');
                if (!want || streq(targets[i].name, want) || (dash && streq(dash + 1, want))) {
                        targets[i].cancel = &s->ctx.cancel;
                        r = ssh_node_connect(&targets[i], 60, &t->ssh);
                        if (r < 0)
                                return r;
                        vgpu_ssh_io(t->ssh, &s->ctx.cancel, &t->io);
                        t->name = strdup(targets[i].name);
                        return t->name ? 0 : -ENOMEM;
                }
        }
        return log_error_errno(-ENOENT, "no node '%s' in cluster %s", want ? want : "(first)",
                               s->cfg.name);
}

static void print_verdict(const cJSON *v, const char *node)
{
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(v, "checks"))
        {
                const cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "detail");
                printf("%-24s %-6s %s\n", node,
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "ok")) ? "ok" : "FAIL",
                       cJSON_IsString(d) ? d->valuestring : "");
        }
}

static int do_load(struct cli_session *s, struct target *t, const char *display, bool json)
{
        enum vgpu_mode mode = display ? (streq(display, "region") ? VGPU_REGION : VGPU_DMABUF)
                                      : config_vgpu_mode(&s->cfg);
        cJSON *v = cJSON_CreateObject();
        int r;

        if (!v)
                return -ENOMEM;
        if (mode != VGPU_DMABUF && mode != VGPU_REGION) {
                cJSON_Delete(v);
                return log_error_errno(-EINVAL,
                                       "vgpu: %s in %s: nothing to load (use --display dmabuf or "
                                       "region)",
                                       vgpu_names[mode], s->cfg.path);
        }
        if (!t->ssh) {
                /* The Kind host: exactly what `up` runs there. */
                cJSON_Delete(v);
                return vgpu_host_load(&s->ctx.cancel, NULL, mode);
        }
        cJSON_AddStringToObject(v, "node", t->name);
        r = vgpu_apply(&t->io, t->name, mode, false, v);
        if (json)
                cli_print_json(v);
        else
                print_verdict(v, t->name);
        cJSON_Delete(v);
        return r;
}

/* status and unload print what the node script says. */
static int do_verb(struct target *t, const char *verb)
{
        _cleanup_free_ char *out = NULL, *e = NULL;
        int r = vgpu_node_verb(&t->io, t->name, &out, verb, NULL);

        if (r < 0)
                return r;
        if (streq(verb, "check") && r == 0) {
                _cleanup_free_ char *facts = NULL;
                int f = vgpu_node_verb(&t->io, t->name, &facts, "facts", NULL);
                if (f >= 0)
                        fputs(facts, stdout);
        }
        fputs(out, r == 0 ? stdout : stderr);
        if (r != 0) {
                e = vgpu_kv(out, "error");
                return log_error_errno(-EBUSY, "%s: %s", t->name, e ? e : "failed");
        }
        return 0;
}

int cmd_vgpu(int argc, char **argv)
{
        enum { OPT_HOST = 256, OPT_DISPLAY };
        static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                             {"host", no_argument, NULL, OPT_HOST},
                                             {"display", required_argument, NULL, OPT_DISPLAY},
                                             {"json", no_argument, NULL, 'j'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {}};
        const char *config = NULL, *display = NULL, *action, *node = NULL;
        bool host = false, json = false;
        struct cli_session s;
        struct state st = {0};
        struct target t = {0};
        int c, r;

        while ((c = getopt_long(argc, argv, "c:jvh", opts, NULL)) >= 0)
                switch (c) {
                case OPT_HOST:
                        host = true;
                        break;
                case OPT_DISPLAY:
                        display = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        if ((r = cli_common_option(c, &config, usage)) != CLI_NEXT_OPTION)
                                return r;
                }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        action = argv[optind++];
        if (optind < argc)
                node = argv[optind++];
        if (optind < argc || (host && node) ||
            (!streq(action, "status") && !streq(action, "load") && !streq(action, "unload")) ||
            (display && (!streq(action, "load") ||
                         (!streq(display, "dmabuf") && !streq(display, "region"))))) {
                usage(stderr);
                return EXIT_USAGE;
        }
        r = cli_session_open(&s, config);
        if (r != EXIT_OK) {
                cli_session_close(&s);
                return r;
        }
        r = run_ctx_watch_signals(&s.ctx, CANCEL_SECOND_EXITS);
        if (r >= 0)
                r = open_target(&s, &st, node, host, &t);
        if (r >= 0) {
                if (streq(action, "load"))
                        r = do_load(&s, &t, display, json);
                else
                        r = do_verb(&t, streq(action, "status") ? "check" : "unload");
        }
        ssh_node_free(t.ssh);
        free(t.name);
        state_done(&st);
        cli_session_close(&s);
        return cli_exit_code(r);
}
