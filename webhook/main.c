/* mesa-injector: the mutating admission webhook that gives KubeVirt's
 * virt-launcher pods the render node and Mesa libraries, and VMIs with a
 * vGPU display the onDefineDomain hook that adds an egl-headless display.
 * Subcommands: serve, certs, manifests, cdi-spec, hook-script, hook-apply,
 * device-plugin, hook-sidecar, config-reference. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/admission.h"
#include "webhook/certs.h"
#include "webhook/config.h"
#include "webhook/manifests.h"
#include "webhook/program.h"
#include "webhook/server.h"

static void usage(FILE *f)
{
        fputs(
            "usage: mesa-injector serve --listen ADDR:PORT --cert FILE --key FILE [--config FILE]\n"
            "                           [--image IMAGE] [--library-profile debian|rhel|none]\n"
            "       mesa-injector certs --service NAME --namespace NS --out DIR [--ip IP]... "
            "[--days N]\n"
            "       mesa-injector manifests [--config FILE] [--url https://HOST:PORT] [--certs "
            "DIR]\n"
            "                               [--image IMAGE] [--library-profile debian|rhel|none]\n"
            "       mesa-injector cdi-spec [--config FILE]\n"
            "       mesa-injector hook-script [--config FILE]\n"
            "       mesa-injector hook-apply [--config FILE] < domain.xml\n"
            "       mesa-injector device-plugin [--config FILE] [--socket-dir DIR] "
            "[--device-glob GLOB]\n"
            "       mesa-injector hook-sidecar [--socket-dir DIR] [--render-node PATH]\n"
            "       mesa-injector config-reference\n",
            f);
}

enum {
        OPT_LISTEN = 1000,
        OPT_CERT,
        OPT_KEY,
        OPT_CONFIG,
        OPT_SERVICE,
        OPT_NAMESPACE,
        OPT_OUT,
        OPT_IP,
        OPT_DAYS,
        OPT_URL,
        OPT_CERTS,
        OPT_IMAGE,
        OPT_PROFILE,
        OPT_HELP
};

static const struct option options[] = {{"listen", required_argument, NULL, OPT_LISTEN},
                                        {"cert", required_argument, NULL, OPT_CERT},
                                        {"key", required_argument, NULL, OPT_KEY},
                                        {"config", required_argument, NULL, OPT_CONFIG},
                                        {"service", required_argument, NULL, OPT_SERVICE},
                                        {"namespace", required_argument, NULL, OPT_NAMESPACE},
                                        {"out", required_argument, NULL, OPT_OUT},
                                        {"ip", required_argument, NULL, OPT_IP},
                                        {"days", required_argument, NULL, OPT_DAYS},
                                        {"url", required_argument, NULL, OPT_URL},
                                        {"certs", required_argument, NULL, OPT_CERTS},
                                        {"image", required_argument, NULL, OPT_IMAGE},
                                        {"library-profile", required_argument, NULL, OPT_PROFILE},
                                        {"help", no_argument, NULL, OPT_HELP},
                                        {}};

struct args {
        const char *listen, *cert, *key, *config, *service, *namespace, *out, *url, *certs;
        struct injector_overrides over; /* --image, --library-profile */
        char **ips;
        unsigned days;
};

/* hook-apply, device-plugin and hook-sidecar live in programs of their own
 * next to this one (they link libxml2 and gRPC, which the server should not
 * carry); the
 * subcommands stay. args[0] is replaced by the program's path. */
static int exec_sibling(const char *argv0, const char *name, char **args)
{
        _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
        _cleanup_free_ char *dir = self ? strdup(self) : strdup(argv0);
        if (!dir)
                return 1;
        char *slash = strrchr(dir, '/');
        _cleanup_free_ char *prog =
            strdup_printf("%s/%s", slash ? (*slash = '\0', dir) : ".", name);
        if (!prog)
                return 1;
        args[0] = prog;
        execv(prog, args);
        log_error("%s: cannot run %s: %m (it is built and installed with mesa-injector)", name,
                  prog);
        return 1;
}

static int exec_hook_apply(const char *argv0, const char *config)
{
        char *args[] = {NULL, config ? "--config" : NULL, (char *)config, NULL};
        return exec_sibling(argv0, "mesa-injector-hook-apply", args);
}

/* Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config. */
static int load_config(const char *file, const struct injector_overrides *o,
                       struct injector_config *c)
{
        int r = injector_config_load_with(c, file, NULL, o);
        return r < 0 ? 2 : 0;
}

static int exit_code(int r)
{
        return r == -EINVAL ? 2 : r < 0 ? 1 : 0;
}

/* Options into *a: -1 to go on, or the exit code. */
static int parse_args(int argc, char **argv, struct args *a)
{
        int opt;
        optind = 2;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
                const char **field = opt == OPT_LISTEN      ? &a->listen
                                     : opt == OPT_CERT      ? &a->cert
                                     : opt == OPT_KEY       ? &a->key
                                     : opt == OPT_CONFIG    ? &a->config
                                     : opt == OPT_SERVICE   ? &a->service
                                     : opt == OPT_NAMESPACE ? &a->namespace
                                     : opt == OPT_OUT       ? &a->out
                                     : opt == OPT_URL       ? &a->url
                                     : opt == OPT_CERTS     ? &a->certs
                                     : opt == OPT_IMAGE     ? &a->over.image
                                     : opt == OPT_PROFILE   ? &a->over.library_profile
                                                            : NULL;
                unsigned long long d;
                if (field)
                        *field = optarg;
                else if (opt == OPT_IP) {
                        if (strv_extend(&a->ips, optarg) < 0)
                                return 1;
                } else if (opt == OPT_DAYS) {
                        if (parse_uint64(optarg, 1, 3650, &d) < 0) {
                                log_error("--days must be 1..3650");
                                return 2;
                        }
                        a->days = (unsigned)d;
                } else
                        return program_usage_exit(opt == OPT_HELP, usage);
        }
        return program_refuse_operands(argc, argv, usage) ?: -1;
}

static int cmd_serve(const struct args *a, struct injector_config *c)
{
        if (!a->listen || !a->cert || !a->key) {
                log_error("serve needs --listen, --cert and --key");
                return 2;
        }
        int ret = load_config(a->config, &a->over, c);
        if (ret)
                return ret;
        struct server_opts so = {
            .listen = a->listen, .cert_file = a->cert, .key_file = a->key, .config = c};
        return exit_code(server_run(&so));
}

static int cmd_certs(const struct args *a, struct injector_config *c)
{
        (void)c;
        struct certs_opts co = {.service = a->service,
                                .namespace = a->namespace,
                                .out_dir = a->out,
                                .ips = a->ips,
                                .days = a->days};
        if (!a->service || !a->namespace || !a->out) {
                log_error("certs needs --service, --namespace and --out");
                return 2;
        }
        int r = certs_generate(&co);
        if (r >= 0)
                log_info("wrote %s/ca.crt, %s/tls.crt, %s/tls.key", a->out, a->out, a->out);
        return exit_code(r);
}

static int cmd_manifests(const struct args *a, struct injector_config *c)
{
        _cleanup_free_ char *text = NULL;
        int ret = load_config(a->config, &a->over, c);
        if (ret)
                return ret;
        if (a->config && read_full_file(a->config, &text, NULL) < 0) {
                log_error("cannot read %s", a->config);
                return 2;
        }
        struct manifests_opts mo = {.config = c,
                                    .config_text = text,
                                    .url = a->url,
                                    .certs_dir = a->certs,
                                    .overrides = &a->over};
        return exit_code(manifests_print(&mo, stdout));
}

static int cmd_cdi_spec(const struct args *a, struct injector_config *c)
{
        int ret = load_config(a->config, NULL, c);
        return ret ? ret : cdi_spec_print(c, stdout) < 0 ? 1 : 0;
}

static int cmd_hook_script(const struct args *a, struct injector_config *c)
{
        int ret = load_config(a->config, NULL, c);
        if (ret)
                return ret;
        _cleanup_free_ char *s = hook_script_render(c);
        return s && fputs(s, stdout) >= 0 ? 0 : 1;
}

static int cmd_config_reference(const struct args *a, struct injector_config *c)
{
        (void)a;
        int ret = load_config(NULL, NULL, c);
        if (!ret)
                schema_print_reference_defaults(injector_config_schema, c, stdout);
        return ret;
}

/* hook-apply execs its own program; it is dispatched in main(), which has
 * argv[0]. */
static const struct subcommand {
        const char *name;
        int (*run)(const struct args *a, struct injector_config *c);
} subcommands[] = {
    {"serve", cmd_serve},
    {"certs", cmd_certs},
    {"manifests", cmd_manifests},
    {"cdi-spec", cmd_cdi_spec},
    {"hook-script", cmd_hook_script},
    {"config-reference", cmd_config_reference},
};

static int run_subcommand(const char *argv0, const char *cmd, const struct args *a)
{
        _cleanup_(injector_config_done) struct injector_config c = {};
        if (streq(cmd, "hook-apply"))
                return exec_hook_apply(argv0, a->config);
        for (size_t i = 0; i < ELEMENTSOF(subcommands); i++)
                if (streq(cmd, subcommands[i].name))
                        return subcommands[i].run(a, &c);
        log_error("unknown command '%s'", cmd);
        usage(stderr);
        return 2;
}

int main(int argc, char **argv)
{
        struct args a = {};
        int r;

        log_set_prefix("mesa-injector");
        /* Before any thread exists (see admission_init). */
        r = admission_init();
        if (r < 0) {
                log_error_errno(r, "cannot set up the JSON parser's allocator");
                return 1;
        }
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        const char *cmd = argv[1];
        if (streq(cmd, "--help") || streq(cmd, "-h") || streq(cmd, "help")) {
                usage(stdout);
                return 0;
        }
        /* Its options are its own (device_plugin_main.c). */
        if (streq(cmd, "device-plugin"))
                return exec_sibling(argv[0], "mesa-injector-device-plugin", argv + 1);
        if (streq(cmd, "hook-sidecar"))
                return exec_sibling(argv[0], "mesa-injector-hook-sidecar", argv + 1);
        r = parse_args(argc, argv, &a);
        if (r < 0)
                r = run_subcommand(argv[0], cmd, &a);
        strv_free(a.ips);
        return r;
}
