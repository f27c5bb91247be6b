/* vgpuenv doctor: is this host able to run nodes, and are the nodes well?
 * Each check is a real attempt (connect to libvirtd, run guest code under
 * KVM), not a look at whether a file exists. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "provision/base/accel.h"
#include "provision/cluster_doctor.h"
#include "provision/node_setup.h"
#include "provision/orchestrate.h"
#include "providers/provider.h"

static void usage(FILE *out)
{
        fprintf(out, "usage: vgpuenv doctor [-c FILE] [--json] [--reprobe] [--kubeconfig FILE]\n\n"
                     "Host checks: the provider's own (libvirtd reachable, kcli present, ...),\n"
                     "the KVM verdict with its evidence (a kernel booted under KVM: what ran,\n"
                     "how long, what it printed; cached per boot, --reprobe probes again), the\n"
                     "same kernel under TCG as the control, tools, free disk, the image cache;\n"
                     "then the render-node probe on the nodes of the cluster when it is up,\n"
                     "then, on a cluster with a kubeconfig (the provider's, or --kubeconfig),\n"
                     "which of the display chain's five links is missing, each with its fix\n"
                     "(docs/display-chain.md). Exit 1 when a check fails (warnings do not).\n");
}

static void add_evidence(cJSON *checks, const char *name, const char *status,
                         const struct accel_evidence *ev)
{
        _cleanup_free_ char *detail =
            strdup_printf("%s%s%s%s%s%s%s", ev->reason ? ev->reason : "",
                          ev->cached ? " (cached this boot)" : "", ev->command ? "\n    ran: " : "",
                          ev->command ? ev->command : "", ev->command ? "\n    printed: " : "",
                          ev->command ? (isempty(ev->output) ? "(nothing)" : ev->output) : "", "");
        doctor_check_add(checks, name, status, detail);
        cJSON *last = cJSON_GetArrayItem(checks, cJSON_GetArraySize(checks) - 1);
        cJSON *e = cJSON_AddObjectToObject(last, "evidence");
        cJSON_AddStringToObject(e, "kernel", ev->kernel ? ev->kernel : "");
        cJSON_AddStringToObject(e, "command", ev->command ? ev->command : "");
        cJSON_AddNumberToObject(e, "seconds", ev->seconds);
        cJSON_AddStringToObject(e, "output", ev->output ? ev->output : "");
        cJSON_AddBoolToObject(e, "cached", ev->cached);
}

static void accel_checks(struct cli_session *s, cJSON *checks, bool reprobe)
{
        struct accel_evidence ev = {0}, tcg = {0};
        enum accel_verdict v;

        if (reprobe) {
                _cleanup_free_ char *boot = NULL;
                if (read_full_file("/proc/sys/kernel/random/boot_id", &boot, NULL) >= 0) {
                        boot[strcspn(boot, "\n")] = 0;
                        _cleanup_free_ char *p =
                            strdup_printf("%s/accel-%s.json", s->ctx.cache_dir, boot);
                        if (p)
                                unlink(p);
                }
        }
        if (accel_choose(&s->ctx, &s->ctx.cancel, &v, &ev) < 0)
                doctor_check_add(checks, "kvm", "fail",
                                 "local.accel is kvm but KVM does not work (see above)");
        else
                add_evidence(checks, "kvm", v == ACCEL_VERDICT_KVM ? "ok" : "warn", &ev);
        accel_evidence_done(&ev);
        /* The control: the probe itself works, so a KVM verdict of TCG is
         * about KVM, not about the probe. */
        int k = accel_probe_kernel(&s->ctx, "tcg", 120, &s->ctx.cancel, &tcg);
        add_evidence(checks, "tcg", k == 0 ? "ok" : "fail", &tcg);
        accel_evidence_done(&tcg);
}

static void host_checks(struct cli_session *s, cJSON *checks, bool reprobe)
{
        const struct provider_ops *p = provider_for_config(&s->cfg);
        char buf[512];

        if (p && p->doctor)
                p->doctor(&s->ctx, checks);
        accel_checks(s, checks, reprobe);
        static const char *const tools[] = {"qemu-system-x86_64", "qemu-img", "mmdebstrap", NULL};
        for (size_t i = 0; tools[i]; i++) {
                _cleanup_free_ char *path = find_program(tools[i]);
                doctor_check_add(checks, tools[i], path ? "ok" : "fail",
                                 path ? path : "missing: run 'make deps'");
        }

        struct statvfs sv;
        _cleanup_free_ char *dir = strdup(s->ctx.cache_dir);
        while (dir && statvfs(dir, &sv) < 0 && strrchr(dir, '/') && strrchr(dir, '/') != dir)
                *strrchr(dir, '/') = 0;
        if (dir && statvfs(dir, &sv) == 0) {
                double gib = (double)sv.f_bavail * (double)sv.f_frsize / (1 << 30);
                snprintf(buf, sizeof(buf), "%.1f GiB free under %s", gib, s->ctx.cache_dir);
                doctor_check_add(checks, "disk", gib < 5 ? "fail" : gib < 15 ? "warn" : "ok", buf);
        }
        _cleanup_free_ char *imgs = strdup_printf("%s/images", s->ctx.cache_dir);
        snprintf(buf, sizeof(buf), "%s (%s)", s->ctx.cache_dir,
                 imgs && file_exists(imgs) ? "has customized images"
                                           : "empty: the first up builds");
        doctor_check_add(checks, "cache", "ok", buf);
}

/* The five links, when there is a cluster to ask. */
static cJSON *link_checks(struct cli_session *s, const char *kubeconfig, const cJSON *verdicts)
{
        const struct provider_ops *p = provider_for_config(&s->cfg);
        _cleanup_free_ char *kc = kubeconfig ? strdup(kubeconfig) : NULL;
        if (!kc && p && p->makes_kubernetes && p->kubeconfig)
                (void)p->kubeconfig(&s->ctx, &kc);
        if (!kc || access(kc, R_OK) < 0)
                return NULL;
        cJSON *links = cJSON_CreateArray();
        struct cluster_doctor d = {.cfg = &s->cfg,
                                   .cancel = &s->ctx.cancel,
                                   .kubeconfig = kc,
                                   .verdicts = verdicts,
                                   .resource = "vgpuenv.io/render",
                                   .webhook_namespace = "mesa-injector"};
        if (links && cluster_doctor_links(&d, links) < 0) {
                cJSON_Delete(links);
                return NULL;
        }
        return links;
}

static void print_links(const cJSON *links)
{
        const cJSON *l;
        printf("\nthe display chain's links (docs/display-chain.md):\n");
        cJSON_ArrayForEach(l, links)
        {
                printf("  %d %-38s %-4s %s\n", cJSON_GetObjectItem(l, "link")->valueint,
                       cJSON_GetObjectItem(l, "check")->valuestring,
                       cJSON_GetObjectItem(l, "status")->valuestring,
                       cJSON_GetObjectItem(l, "detail")->valuestring);
                const char *fix = cJSON_GetObjectItem(l, "fix")->valuestring;
                if (*fix)
                        printf("    fix: %s\n", fix);
        }
}

int cmd_doctor(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
            {"reprobe", no_argument, NULL, 'R'},      {"kubeconfig", required_argument, NULL, 'K'},
            {"help", no_argument, NULL, 'h'},         {}};
        bool reprobe = false;
        const char *config = NULL, *kubeconfig = NULL;
        bool json = false, failed = false;
        struct cli_session s;
        cJSON *out = NULL, *verdicts = NULL, *it;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:jh", opts, NULL)) >= 0)
                if (c == 'j')
                        json = true;
                else if (c == 'R')
                        reprobe = true;
                else if (c == 'K')
                        kubeconfig = optarg;
                else if ((r = cli_common_option(c, &config, usage)) != CLI_NEXT_OPTION)
                        return r;
        out = cJSON_CreateObject();
        r = cli_session_open(&s, config);
        if (r != EXIT_OK) {
                cli_session_close(&s);
                cJSON_Delete(out);
                return r;
        }
        cJSON *checks = cJSON_AddArrayToObject(out, "host");
        s.ctx.json = json;
        if (run_ctx_watch_signals(&s.ctx, CANCEL_SECOND_EXITS) < 0) {
                cli_session_close(&s);
                cJSON_Delete(out);
                return EXIT_FAIL;
        }
        host_checks(&s, checks, reprobe);
        _cleanup_free_ char *state_file = strdup_printf("%s/state.json", s.ctx.state_dir);
        if (state_file && file_exists(state_file) && provision_probe(&s.ctx, &verdicts) < 0)
                failed = true;
        cJSON *links = link_checks(&s, kubeconfig, verdicts);
        if (verdicts)
                cJSON_AddItemToObject(out, "nodes", verdicts);
        if (links) {
                cJSON_AddItemToObject(out, "links", links);
                cJSON_ArrayForEach(
                    it, links) if (streq(cJSON_GetObjectItem(it, "status")->valuestring, "fail"))
                    failed = true;
        }
        cJSON_ArrayForEach(it, checks) if (streq(cJSON_GetObjectItem(it, "status")->valuestring,
                                                 "fail")) failed = true;
        if (json)
                cli_print_json(out);
        else {
                printf("%-20s %-6s %s\n", "CHECK", "STATUS", "DETAIL");
                cJSON_ArrayForEach(it, checks)
                    printf("%-20s %-6s %s\n", cJSON_GetObjectItem(it, "check")->valuestring,
                           cJSON_GetObjectItem(it, "status")->valuestring,
                           cJSON_GetObjectItem(it, "detail")->valuestring);
                if (verdicts) {
                        printf("\nnodes:\n");
                        node_verdicts_print(verdicts, stdout);
                } else
                        printf("\nnodes: cluster %s is not up\n", s.cfg.name);
                if (links)
                        print_links(links);
        }
        cJSON_Delete(out);
        cli_session_close(&s);
        return failed ? EXIT_FAIL : EXIT_OK;
}
