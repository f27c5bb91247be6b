/* vgpuenv image: build the node image ahead of `up`, or list the cache. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/util.h"
#include "images/image.h"
#include "provision/base/accel.h"
#include "provision/base/plan.h"
#include "provision/base/state.h"

static void usage(FILE *out)
{
        fprintf(out, "usage: vgpuenv image build [-c FILE] [--dry-run]\n"
                     "       vgpuenv image list\n\n"
                     "build: build the base image (for image.base debian-bookworm) and customize\n"
                     "       it with mesa, keys and boot settings in one appliance launch; cached\n"
                     "       by content, so a second build with the same inputs launches nothing.\n"
                     "       Prints the image path on stdout.\n"
                     "list:  the cached base and customized images.\n");
}

static void list_dir(const char *cache, const char *sub)
{
        _cleanup_free_ char *d = strdup_printf("%s/%s", cache, sub);
        struct dirent **ents = NULL;
        int n = d ? scandir(d, &ents, NULL, alphasort) : -1;

        for (int i = 0; i < n; i++) {
                if (ents[i]->d_name[0] != '.' && !strstr(ents[i]->d_name, ".tmp-"))
                        printf("%-7s %s/%s\n", sub, d, ents[i]->d_name);
                free(ents[i]);
        }
        free(ents);
}

/* The image steps of `up`, as a plan of their own. */
static int build(struct run_ctx *ctx, bool dry_run)
{
        _cleanup_plan_ struct plan *p = plan_new("image build");
        _cleanup_(state_done) struct state st = {0};
        enum accel_verdict accel = ACCEL_VERDICT_TCG;
        struct node_image img = {0};
        int r;

        if (!p)
                return log_error_errno(ENOMEM, "out of memory");
        accel_plan(p, ctx, &accel);
        if ((r = image_plan(p, ctx, &accel, &img)) < 0)
                return r;
        if (dry_run)
                return plan_print(p, stdout);
        if ((r = run_ctx_watch_signals(ctx, CANCEL_SECOND_EXITS)) < 0 ||
            (r = run_ctx_open_log(ctx, "image")) < 0 ||
            (r = state_peek(&st, ctx->state_dir, ctx->cfg->name,
                            provider_names[ctx->cfg->provider])) < 0)
                return r;
        r = plan_run(p, ctx, &st, NULL);
        if (r >= 0 && img.disk)
                printf("%s\n", img.disk);
        node_image_done(&img);
        return r;
}

static int run_build(struct cli_session *s, bool dry_run)
{
        return build(&s->ctx, dry_run);
}

int cmd_image(int argc, char **argv)
{
        static const struct cli_session_command cmd = {.name = "image build",
                                                       .usage = usage,
                                                       .flag_long = "dry-run",
                                                       .flag_short = 'n',
                                                       .run = run_build};

        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        if (streq(argv[1], "list")) {
                _cleanup_free_ char *cache = vgpuenv_cache_dir();
                list_dir(cache, "base");
                list_dir(cache, "images");
                return EXIT_OK;
        }
        if (!streq(argv[1], "build")) {
                fprintf(stderr, "vgpuenv image: unknown action '%s'\n", argv[1]);
                usage(stderr);
                return EXIT_USAGE;
        }
        return cli_run_session_command(&cmd, argc, argv, 2);
}
