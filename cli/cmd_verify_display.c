/* vgpuenv verify-display: prove the vGPU display chain on a node of the
 * cluster (e2e/display/ does the work; this file parses options and prints
 * the verdict). */
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
#include "e2e/display/display.h"
#include "provision/base/state.h"

static void usage(FILE *out)
{
        fprintf(out,
                "usage: vgpuenv verify-display [-c FILE] [options] [NODE]\n\n"
                "Reproduce KubeVirt's vGPU display failure inside NODE (default: the first\n"
                "node) and show the fix, with libvirt and QEMU run as virt-launcher runs them:\n"
                "an mdev with a DMABUF display (the fake NVIDIA T4 of provision/vgpu/, as node\n"
                "setup loads it; or the kernel's mbochs sample; or an existing vGPU), a\n"
                "KubeVirt-shaped domain that must fail with 'vfio-display-dmabuf: opengl not\n"
                "available', the same domain through the onDefineDomain hook that must start\n"
                "with a live display (the vGPU's own plane), and negative controls (mesa\n"
                "hidden, no render node). --display region shows the other table: the fake\n"
                "T4 with a region display, KubeVirt's VNC-only domain starting with no GL at\n"
                "all and the region plane live. The node needs libvirt and QEMU: image.profile:\n"
                "display. Everything is undone afterwards. Exit 0 only when every check passes.\n\n"
                "  -c, --config FILE      cluster config (default %s)\n"
                "      --display MODE     the fake T4's display: dmabuf (default) or region\n"
                "      --mbochs           the kernel's mbochs sample instead of the fake T4\n"
                "      --mbochs-ko FILE   a prebuilt mbochs.ko for the node's kernel (--mbochs)\n"
                "      --mdev-parent NAME use this parent under /sys/class/mdev_bus instead\n"
                "      --mdev-type TYPE   the type (default: nvidia-222 on the fake T4, else\n"
                "                         the parent's first type with room)\n"
                "      --artifacts DIR    where the screendumps go (default: the state dir)\n"
                "  -j, --json             the table as JSON on stdout\n"
                "  -v, --verbose          show every node command's output\n",
                cli_default_config());
}

/* Names end up in sysfs paths on the node. */
static bool sysfs_name_ok(const char *s)
{
        return !isempty(s) && !strchr(s, '/') && !streq(s, ".") && !streq(s, "..");
}

/* Which vGPU the options name, and the combinations that make no sense
 * (EXIT_USAGE, said why). */
static int settle_vgpu(struct display_opts *o, bool mbochs)
{
        if ((o->mdev_parent && !sysfs_name_ok(o->mdev_parent)) ||
            (o->mdev_type && !sysfs_name_ok(o->mdev_type))) {
                fprintf(stderr, "vgpuenv verify-display: --mdev-parent/--mdev-type take a name "
                                "under /sys/class/mdev_bus, not a path\n");
                return EXIT_USAGE;
        }
        if (o->mbochs_ko)
                mbochs = true;
        if (mbochs && o->mdev_parent) {
                fprintf(stderr, "vgpuenv verify-display: --mbochs and --mdev-parent exclude "
                                "each other\n");
                return EXIT_USAGE;
        }
        if (o->mdev_type && mbochs) {
                fprintf(stderr, "vgpuenv verify-display: --mdev-type does not go with --mbochs "
                                "(mbochs picks its own type)\n");
                return EXIT_USAGE;
        }
        o->vgpu = mbochs           ? DISPLAY_VGPU_MBOCHS
                  : o->mdev_parent ? DISPLAY_VGPU_PARENT
                                   : DISPLAY_VGPU_FAKE_T4;
        if (o->region && o->vgpu != DISPLAY_VGPU_FAKE_T4) {
                fprintf(stderr, "vgpuenv verify-display: --display region is the fake T4's "
                                "(not with --mbochs or --mdev-parent)\n");
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

int cmd_verify_display(int argc, char **argv)
{
        enum { OPT_PARENT = 256, OPT_TYPE, OPT_KO, OPT_ARTIFACTS, OPT_DISPLAY, OPT_MBOCHS };
        static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                             {"display", required_argument, NULL, OPT_DISPLAY},
                                             {"mbochs", no_argument, NULL, OPT_MBOCHS},
                                             {"mdev-parent", required_argument, NULL, OPT_PARENT},
                                             {"mdev-type", required_argument, NULL, OPT_TYPE},
                                             {"mbochs-ko", required_argument, NULL, OPT_KO},
                                             {"artifacts", required_argument, NULL, OPT_ARTIFACTS},
                                             {"json", no_argument, NULL, 'j'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {}};
        struct display_opts o = {0};
        struct display_report rep = {0};
        const char *config = NULL;
        bool json = false, mbochs = false;
        struct cli_session s;
        struct state st = {0};
        int c, r;

        while ((c = getopt_long(argc, argv, "c:jvh", opts, NULL)) >= 0)
                switch (c) {
                case OPT_DISPLAY:
                        if (!streq(optarg, "dmabuf") && !streq(optarg, "region")) {
                                fprintf(stderr,
                                        "vgpuenv verify-display: --display takes dmabuf "
                                        "or region, not '%s'\n",
                                        optarg);
                                return EXIT_USAGE;
                        }
                        o.region = streq(optarg, "region");
                        break;
                case OPT_MBOCHS:
                        mbochs = true;
                        break;
                case OPT_PARENT:
                        o.mdev_parent = optarg;
                        break;
                case OPT_TYPE:
                        o.mdev_type = optarg;
                        break;
                case OPT_KO:
                        o.mbochs_ko = optarg;
                        break;
                case OPT_ARTIFACTS:
                        o.artifacts = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        if ((r = cli_common_option(c, &config, usage)) != CLI_NEXT_OPTION)
                                return r;
                }
        if (optind < argc)
                o.node = argv[optind++];
        if (optind < argc) {
                fprintf(stderr, "vgpuenv verify-display: one node at a time ('%s' is extra)\n",
                        argv[optind]);
                return EXIT_USAGE;
        }
        if ((r = settle_vgpu(&o, mbochs)) != EXIT_OK)
                return r;

        r = cli_session_open(&s, config);
        if (r != EXIT_OK) {
                cli_session_close(&s);
                return r;
        }
        r = cli_open_cluster_state(&s, &st, false);
        if (r < 0) {
                cli_session_close(&s);
                return EXIT_FAIL;
        }
        /* Ctrl-C stops between steps and still cleans the node up. */
        r = run_ctx_watch_signals(&s.ctx, CANCEL_SECOND_KILLS_CHILD);
        if (r >= 0)
                r = display_verify(&s.ctx, &st, &o, &rep);
        if (rep.n_checks > 0) {
                if (json) {
                        cJSON *j = report_json(&rep);
                        cli_print_json(j);
                        cJSON_Delete(j);
                } else
                        report_print_table(&rep, stdout);
        }
        bool ok = r >= 0 && report_ok(&rep);
        report_done(&rep);
        state_done(&st);
        cli_session_close(&s);
        if (r < 0)
                return cli_exit_code(r);
        return ok ? EXIT_OK : EXIT_FAIL;
}
