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

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"
#include "provision/base/accel.h"
#include "provision/node_setup.h"
#include "provision/base/state.h"

static void usage(FILE *out)
{
        fprintf(out, "usage: vgpuenv doctor [-c FILE] [--json]\n\n"
                     "Host checks: libvirtd reachable, KVM usable (else TCG), tools present,\n"
                     "free disk space, image cache; then the render-node probe on the nodes of\n"
                     "the cluster when it is up. Exit 1 when a check fails (warnings do not).\n");
}

static void add(cJSON *checks, const char *name, const char *status, const char *detail)
{
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "check", name);
        cJSON_AddStringToObject(o, "status", status);
        cJSON_AddStringToObject(o, "detail", detail ? detail : "");
        cJSON_AddItemToArray(checks, o);
}

static void host_checks(struct cli_session *s, cJSON *checks)
{
        char buf[512];
        virConnectPtr conn;
        char *detail = NULL;

        virSetErrorFunc(NULL, NULL);
        conn = virConnectOpen(s->cfg.local.uri);
        if (conn) {
                unsigned long v = 0;
                virConnectGetLibVersion(conn, &v);
                snprintf(buf, sizeof(buf), "%s answers (libvirt %lu.%lu.%lu)", s->cfg.local.uri,
                         v / 1000000, v / 1000 % 1000, v % 1000);
                add(checks, "libvirtd", "ok", buf);
                virConnectClose(conn);
        } else
                add(checks, "libvirtd", "fail",
                    "not reachable: start it (systemctl start libvirtd, or "
                    "scripts/ensure-libvirtd.sh)");

        int k = accel_probe("kvm", 3.0, &detail);
        snprintf(buf, sizeof(buf), "%s",
                 k == 0   ? "guest code runs under KVM"
                 : detail ? detail
                          : "");
        add(checks, "kvm", k == 0 ? "ok" : "warn", k == 0 ? buf : NULL);
        if (k != 0) {
                snprintf(buf, sizeof(buf), "KVM unusable (%s): nodes will run under TCG, slower",
                         detail ? detail : "probe failed");
                cJSON_DeleteItemFromArray(checks, cJSON_GetArraySize(checks) - 1);
                add(checks, "kvm", "warn", buf);
        }
        free(detail);
        detail = NULL;
        k = accel_probe("tcg", 10.0, &detail);
        add(checks, "tcg", k == 0 ? "ok" : "fail", k == 0 ? "guest code runs under TCG" : detail);
        free(detail);

        static const char *const tools[] = {"qemu-system-x86_64", "qemu-img", "mmdebstrap", NULL};
        for (size_t i = 0; tools[i]; i++) {
                _cleanup_free_ char *p = find_program(tools[i]);
                add(checks, tools[i], p ? "ok" : "fail", p ? p : "missing: run 'make deps'");
        }

        struct statvfs sv;
        _cleanup_free_ char *dir = strdup(s->ctx.cache_dir);
        while (dir && statvfs(dir, &sv) < 0 && strrchr(dir, '/') && strrchr(dir, '/') != dir)
                *strrchr(dir, '/') = 0;
        if (dir && statvfs(dir, &sv) == 0) {
                double gib = (double)sv.f_bavail * (double)sv.f_frsize / (1 << 30);
                snprintf(buf, sizeof(buf), "%.1f GiB free under %s", gib, s->ctx.cache_dir);
                add(checks, "disk", gib < 5 ? "fail" : gib < 15 ? "warn" : "ok", buf);
        }
        _cleanup_free_ char *imgs = strdup_printf("%s/images", s->ctx.cache_dir);
        snprintf(buf, sizeof(buf), "%s (%s)", s->ctx.cache_dir,
                 imgs && file_exists(imgs) ? "has customized images"
                                           : "empty: the first up builds");
        add(checks, "cache", "ok", buf);
}

int cmd_doctor(int argc, char **argv)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {}};
        const char *config = NULL;
        bool json = false, failed = false;
        struct cli_session s;
        cJSON *out = NULL, *verdicts = NULL, *it;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:jh", opts, NULL)) >= 0)
                if (c == 'j')
                        json = true;
                else if ((r = cli_common_option(c, &config, usage)) != CLI_NEXT_OPTION)
                        return r;
        out = cJSON_CreateObject();
        r = cli_session_open(&s, config, false);
        if (r != EXIT_OK) {
                cli_session_close(&s);
                cJSON_Delete(out);
                return r;
        }
        cJSON *checks = cJSON_AddArrayToObject(out, "host");
        host_checks(&s, checks);
        struct state st = {0};
        r = cli_open_cluster_state(&s, &st, true);
        if (r >= 0 && node_probe_all(&s.ctx, &st, &verdicts) < 0)
                failed = true;
        else if (r < 0 && r != -ENOENT)
                failed = true;
        state_done(&st);
        if (verdicts)
                cJSON_AddItemToObject(out, "nodes", verdicts);
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
        }
        cJSON_Delete(out);
        cli_session_close(&s);
        return failed ? EXIT_FAIL : EXIT_OK;
}
