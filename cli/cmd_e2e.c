/* `vgpuenv e2e run|matrix|report`: option parsing and usage texts; the work
 * is in e2e/ (run.c, matrix.c, report.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <stdbool.h>

#include "cli/commands.h"
#include "common/log.h"
#include "common/macro.h"
#include "e2e/matrix.h"
#include "e2e/report.h"
#include "e2e/run.h"

static const char usage_main[] =
    "Usage: vgpuenv e2e COMMAND [OPTIONS]\n"
    "\n"
    "KubeVirt's MediatedDevices functional tests with the vGPU display, and the\n"
    "Kind-vs-VM matrix.\n"
    "\n"
    "Commands:\n"
    "  run     run `make functest` in a KubeVirt checkout against a cluster\n"
    "  matrix  run several (provider, display) cells and report on all of them\n"
    "  report  write Markdown, JSON, JUnit or HTML from run directories\n"
    "\n"
    "`vgpuenv e2e COMMAND --help` shows a command's options. See docs/e2e.md.\n";

static const char usage_run[] =
    "Usage: vgpuenv e2e run -c FILE --kubevirt DIR [OPTIONS]\n"
    "\n"
    "Runs `make functest` in the KubeVirt checkout DIR against the cluster that\n"
    "`vgpuenv up -c FILE` made. The suite gets the cluster through its provider\n"
    "config (KUBEVIRTCI_CONFIG_PATH/KUBEVIRT_PROVIDER/config-provider-*.sh: the\n"
    "cluster's own for kubevirtci and kind, one vgpuenv writes for local and kcli)\n"
    "and KUBECONFIG, DOCKER_PREFIX, DOCKER_TAG, ARTIFACTS, KUBEVIRT_E2E_FOCUS.\n"
    "First checks one KubeVirt CR, one schedulable node (MediatedDevices), no\n"
    "leftover kubevirt-test-* namespaces and, from a node, the webhook. On failure\n"
    "collects launcher logs, pod specs, VMIs, domain XML, QEMU logs, node probes\n"
    "and the webhook log into RUN-DIR/collected.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     cluster config (default: $VGPUENV_CONFIG or configs/local.yaml)\n"
    "      --kubevirt DIR    KubeVirt checkout (required)\n"
    "      --focus REGEX     KUBEVIRT_E2E_FOCUS (default: MediatedDevices)\n"
    "      --skip REGEX      KUBEVIRT_E2E_SKIP\n"
    "      --run-dir DIR     where results go (default: _e2e/CLUSTER-UTCTIME)\n"
    "      --name NAME       name of the run in reports (default: the cluster name)\n"
    "      --display MODE    VGPU_DISPLAY for a KubeVirt that reads it: auto (on for VM\n"
    "                        providers, off for kind), on, off; KubeVirt main: always on\n"
    "      --vgpu-display M  the fake vGPU's display, recorded: dmabuf (default), region,\n"
    "                        none\n"
    "      --expect RESULT   passed (default) or failed: the exit status says whether\n"
    "                        the run showed it\n"
    "      --expect-message TEXT  with --expect failed: every failure must show TEXT\n"
    "      --kubeconfig FILE for local/kcli clusters: this kubeconfig, not the provider's\n"
    "      --delete-leftover-namespaces  delete kubevirt-test-* namespaces an interrupted\n"
    "                        run left, instead of stopping\n"
    "      --no-collect      do not collect artifacts on failure\n"
    "      --grace SECONDS   after Ctrl-C, wait this long before killing (default 30)\n"
    "  -q, --quiet           show the progress line only (output still in the log)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit status: 0 the run showed the expected result (all specs passed, by\n"
    "default), 1 it did not, or the cluster is not ready for it, 2 bad usage or config.\n";

static const char usage_matrix[] =
    "Usage: vgpuenv e2e matrix -c MATRIX.yaml [OPTIONS]\n"
    "\n"
    "Runs `vgpuenv e2e run` for every cell of the matrix (in sequence, or at once\n"
    "with `parallel: true`), each in OUT/CELL, then writes OUT/report.md,\n"
    "OUT/report.html, OUT/report.json and OUT/junit.xml.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   matrix file (see configs/matrix.yaml)\n"
    "      --kubevirt DIR  KubeVirt checkout for every cell (overrides the file)\n"
    "      --out DIR       matrix directory (default: the file's out, or\n"
    "                      _e2e/matrix-UTCTIME)\n"
    "      --up            run `vgpuenv up` before and `vgpuenv down` after each cell\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 every cell showed its expected result, 1 otherwise, 2 bad matrix\n"
    "file.\n";

static const char usage_report[] =
    "Usage: vgpuenv e2e report [--format FORMAT] [--out FILE] DIR...\n"
    "\n"
    "Reads run directories (or matrix directories holding them) and writes one\n"
    "report. Links to artifacts are relative to the directory of FILE.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  markdown (default; fits $GITHUB_STEP_SUMMARY), json,\n"
    "                       junit (one merged file), html (self-contained page)\n"
    "  -o, --out FILE       write to FILE instead of stdout\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: 0 report written (whatever the runs' outcomes; the report says\n"
    "them), 1 the report could not be written, 2 bad usage or unreadable DIR.\n";

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
        fprintf(stderr, "vgpuenv e2e: ");
        fprintf(stderr, fmt, arg ? arg : "");
        fprintf(stderr, "\n\n%s", usage);
        return EXIT_USAGE;
}

enum {
        OPT_KUBEVIRT = 1000,
        OPT_FOCUS,
        OPT_SKIP,
        OPT_RUN_DIR,
        OPT_NAME,
        OPT_DISPLAY,
        OPT_KUBECONFIG,
        OPT_NO_COLLECT,
        OPT_GRACE,
        OPT_OUT,
        OPT_UP,
        OPT_VGPU_DISPLAY,
        OPT_EXPECT,
        OPT_EXPECT_MESSAGE,
        OPT_DELETE_LEFTOVERS
};

/* e2e/ returns 0/-errno; the exit codes are the CLI's. */
static int exit_code_of(int r)
{
        if (r == -EINVAL || r == -EEXIST)
                return EXIT_USAGE;
        return r < 0 ? EXIT_FAIL : EXIT_OK;
}

/* The options of `e2e run` that take a value of their own kind: -1 when c
 * is none of them, else 0 or an exit code. */
static int run_value_option(int c, struct e2e_run_opts *o)
{
        char *end = NULL;

        switch (c) {
        case OPT_DISPLAY:
                if (streq(optarg, "auto"))
                        o->display = E2E_DISPLAY_AUTO;
                else if (streq(optarg, "on"))
                        o->display = E2E_DISPLAY_ON;
                else if (streq(optarg, "off"))
                        o->display = E2E_DISPLAY_OFF;
                else
                        return usage_error(usage_run,
                                           "--display must be auto, on or off, not \"%s\"", optarg);
                return 0;
        case OPT_GRACE:
                o->grace = strtod(optarg, &end);
                if (!end || *end || o->grace <= 0 || o->grace > 3600)
                        return usage_error(usage_run,
                                           "--grace must be seconds between 0 and 3600, not \"%s\"",
                                           optarg);
                return 0;
        default:
                return -1;
        }
}

/* The string and flag options of `e2e run`: false when c is none of them. */
static bool run_plain_option(int c, struct e2e_run_opts *o)
{
        const char **s = c == 'c'                  ? &o->config
                         : c == OPT_KUBEVIRT       ? &o->kubevirt_dir
                         : c == OPT_FOCUS          ? &o->focus
                         : c == OPT_SKIP           ? &o->skip
                         : c == OPT_RUN_DIR        ? &o->run_dir
                         : c == OPT_NAME           ? &o->name
                         : c == OPT_KUBECONFIG     ? &o->kubeconfig
                         : c == OPT_VGPU_DISPLAY   ? &o->vgpu_display
                         : c == OPT_EXPECT         ? &o->expect_outcome
                         : c == OPT_EXPECT_MESSAGE ? &o->expect_message
                                                   : NULL;

        if (s) {
                *s = optarg;
                return true;
        }
        if (c == OPT_NO_COLLECT)
                o->collect = false;
        else if (c == OPT_DELETE_LEFTOVERS)
                o->delete_leftovers = true;
        else if (c == 'q')
                o->quiet = true;
        else
                return false;
        return true;
}

static int e2e_cmd_run(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"kubevirt", required_argument, NULL, OPT_KUBEVIRT},
            {"focus", required_argument, NULL, OPT_FOCUS},
            {"skip", required_argument, NULL, OPT_SKIP},
            {"run-dir", required_argument, NULL, OPT_RUN_DIR},
            {"name", required_argument, NULL, OPT_NAME},
            {"display", required_argument, NULL, OPT_DISPLAY},
            {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
            {"no-collect", no_argument, NULL, OPT_NO_COLLECT},
            {"vgpu-display", required_argument, NULL, OPT_VGPU_DISPLAY},
            {"expect", required_argument, NULL, OPT_EXPECT},
            {"expect-message", required_argument, NULL, OPT_EXPECT_MESSAGE},
            {"delete-leftover-namespaces", no_argument, NULL, OPT_DELETE_LEFTOVERS},
            {"grace", required_argument, NULL, OPT_GRACE},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        struct e2e_run_opts o = {.display = E2E_DISPLAY_AUTO, .collect = true};
        struct e2e_run_result res;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+c:qh", opts, NULL)) >= 0) {
                if (run_plain_option(c, &o))
                        continue;
                if ((r = run_value_option(c, &o)) >= 0) {
                        if (r > 0)
                                return r;
                        continue;
                }
                if (c == 'h') {
                        fputs(usage_run, stdout);
                        return EXIT_OK;
                }
                fprintf(stderr, "\n%s", usage_run);
                return EXIT_USAGE;
        }
        if (optind < argc)
                return usage_error(usage_run, "unexpected argument \"%s\"", argv[optind]);
        if (!o.kubevirt_dir)
                return usage_error(usage_run, "--kubevirt DIR is required%s", NULL);
        if (!o.config)
                o.config = cli_default_config();
        r = e2e_run(&o, &res);
        if (r < 0)
                return exit_code_of(r);
        return res.as_expected ? EXIT_OK : EXIT_FAIL;
}

static int e2e_cmd_matrix(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"kubevirt", required_argument, NULL, OPT_KUBEVIRT},
            {"out", required_argument, NULL, OPT_OUT},
            {"up", no_argument, NULL, OPT_UP},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        struct matrix_opts o = {0};
        bool as_expected;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        o.path = optarg;
                        break;
                case OPT_KUBEVIRT:
                        o.kubevirt = optarg;
                        break;
                case OPT_OUT:
                        o.out = optarg;
                        break;
                case OPT_UP:
                        o.up = true;
                        break;
                case 'h':
                        fputs(usage_matrix, stdout);
                        return EXIT_OK;
                default:
                        fprintf(stderr, "\n%s", usage_matrix);
                        return EXIT_USAGE;
                }
        }
        if (optind < argc)
                return usage_error(usage_matrix, "unexpected argument \"%s\"", argv[optind]);
        if (!o.path)
                return usage_error(usage_matrix, "-c MATRIX.yaml is required%s", NULL);
        /* Tests and wrappers may point at another binary; /proc/self/exe
         * otherwise. */
        o.self = getenv("VGPUENV_SELF");
        r = e2e_matrix(&o, &as_expected);
        if (r < 0)
                return exit_code_of(r);
        return as_expected ? EXIT_OK : EXIT_FAIL;
}

static int e2e_cmd_report(int argc, char **argv)
{
        static const struct option opts[] = {
            {"format", required_argument, NULL, 'f'},
            {"out", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        const char *out = NULL;
        int fmt = REPORT_MARKDOWN, c, r;
        struct e2e_cell *cells = NULL;
        size_t n = 0, passed = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+f:o:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'f':
                        fmt = report_format_from_name(optarg);
                        if (fmt < 0)
                                return usage_error(usage_report,
                                                   "--format must be markdown, json, junit or "
                                                   "html, not \"%s\"",
                                                   optarg);
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'h':
                        fputs(usage_report, stdout);
                        return EXIT_OK;
                default:
                        fprintf(stderr, "\n%s", usage_report);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc)
                return usage_error(usage_report, "at least one run directory is required%s", NULL);
        r = e2e_cells_load(argv + optind, &cells, &n);
        if (r < 0)
                return EXIT_USAGE;
        r = report_write(fmt, cells, n, out);
        for (size_t i = 0; i < n; i++)
                if (cells[i].outcome == E2E_PASSED)
                        passed++;
        e2e_cells_free(cells, n);
        if (r < 0)
                return EXIT_FAIL;
        if (out)
                log_info("Wrote %s (%zu run%s, %zu passed)", out, n, n == 1 ? "" : "s", passed);
        return EXIT_OK;
}

int cmd_e2e(int argc, char **argv)
{
        if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help") ||
            streq(argv[1], "help")) {
                fputs(usage_main, argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        if (streq(argv[1], "run"))
                return e2e_cmd_run(argc - 1, argv + 1);
        if (streq(argv[1], "matrix"))
                return e2e_cmd_matrix(argc - 1, argv + 1);
        if (streq(argv[1], "report"))
                return e2e_cmd_report(argc - 1, argv + 1);
        fprintf(stderr, "vgpuenv e2e: unknown command \"%s\"\n\n%s", argv[1], usage_main);
        return EXIT_USAGE;
}
