/* vgpuenv status: what the cluster has, from the state and from libvirt. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/util.h"
#include "provision/orchestrate.h"

static void usage(FILE *out)
{
        fprintf(out,
                "usage: vgpuenv status [-c FILE] [--json] [-v] [-q]\n\n"
                "Show whether the cluster is up, its nodes (address, ssh user) and the\n"
                "objects vgpuenv created for it with their live state.\n\n"
                "  -c, --config FILE  cluster config (default %s)\n"
                "  -j, --json         machine-readable output on stdout\n",
                cli_default_config());
}

static void print_human(const cJSON *o)
{
        const cJSON *it;

        printf("cluster %s (provider %s): %s\n", cJSON_GetObjectItem(o, "cluster")->valuestring,
               cJSON_GetObjectItem(o, "provider")->valuestring,
               cJSON_IsTrue(cJSON_GetObjectItem(o, "up")) ? "up" : "not up");
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "nodes"))
        {
                const cJSON *n = cJSON_GetObjectItem(it, "name"),
                            *a = cJSON_GetObjectItem(it, "address");
                const cJSON *u = cJSON_GetObjectItem(it, "user");
                printf("  node %-24s %s@%s\n", cJSON_IsString(n) ? n->valuestring : "?",
                       cJSON_IsString(u) ? u->valuestring : "?",
                       cJSON_IsString(a) ? a->valuestring : "?");
        }
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "domains"))
            printf("  domain %-22s %s\n", cJSON_GetObjectItem(it, "name")->valuestring,
                   cJSON_GetObjectItem(it, "state")->valuestring);
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "resources"))
            printf("  %-8s %s\n", cJSON_GetObjectItem(it, "kind")->valuestring,
                   cJSON_GetObjectItem(it, "name")->valuestring);
}

static int run_status(struct cli_session *s, bool json)
{
        cJSON *o = NULL;
        int r = provision_status(&s->ctx, &o);

        if (r >= 0 && json)
                cli_print_json(o);
        else if (r >= 0)
                print_human(o);
        cJSON_Delete(o);
        return r;
}

int cmd_status(int argc, char **argv)
{
        static const struct cli_session_command cmd = {.name = "status",
                                                       .usage = usage,
                                                       .flag_long = "json",
                                                       .flag_short = 'j',
                                                       .run = run_status};
        return cli_run_session_command(&cmd, argc, argv, 1);
}
