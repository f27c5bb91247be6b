/* Collect failure artifacts with kubectl and ssh (see collect.h). */
#include "e2e/collect.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/cancel.h"
#include "common/proc.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"

/* Fixed scripts run inside the launcher's compute container; no input is
 * spliced into them. Non-root launchers (KubeVirt >= 0.59) talk to a session
 * virtqemud and keep QEMU logs under kubevirt-private; root launchers use the
 * system URI and /var/log/libvirt/qemu. */
static const char dump_domain_script[] =
    "for uri in 'qemu+unix:///session?socket=/var/run/libvirt/virtqemud-sock' "
    "'qemu:///system'; do\n"
    "  doms=$(virsh -c \"$uri\" list --all --name 2>/dev/null) || continue\n"
    "  for d in $doms; do virsh -c \"$uri\" dumpxml \"$d\"; done\n"
    "  exit 0\n"
    "done\n"
    "echo 'no libvirt connection inside the launcher' >&2\n"
    "exit 1\n";

static const char qemu_log_script[] =
    "found=0\n"
    "for f in /var/run/kubevirt-private/libvirt/qemu/log/*.log /var/log/libvirt/qemu/*.log; do\n"
    "  [ -f \"$f\" ] || continue\n"
    "  found=1; echo \"==> $f <==\"; cat \"$f\"\n"
    "done\n"
    "[ $found = 1 ]\n";

/* Links 1 and 2 of the display chain plus the mdev side, as seen on a node. */
static const char node_probe_script[] =
    "echo '## /dev/dri'; ls -l /dev/dri 2>&1\n"
    "echo '## modules'; lsmod 2>/dev/null | grep -E '^(virtio_gpu|vfio|mdev|mbochs|nvidia)' "
    "|| true\n"
    "echo '## mdev types'\n"
    "for t in /sys/class/mdev_bus/*/mdev_supported_types/*; do\n"
    "  [ -d \"$t\" ] && echo \"$t name=$(cat \"$t/name\" 2>/dev/null) "
    "available=$(cat \"$t/available_instances\" 2>/dev/null)\"\n"
    "done\n"
    "echo '## mdev devices'; ls /sys/bus/mdev/devices 2>&1\n"
    "echo '## vgpuenv-probe'\n"
    "if command -v vgpuenv-probe >/dev/null; then vgpuenv-probe; else echo 'not installed'; "
    "fi\n";

struct collector {
        const struct collect_opts *o;
        FILE *index;
        unsigned files;
        bool stopped;
};

static int save(struct collector *c, const char *rel, const char *data)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", c->o->out_dir, rel);
        _cleanup_free_ char *dir = NULL;
        char *slash;
        int r;

        if (!path || !(dir = strdup(path)))
                return -ENOMEM;
        if ((slash = strrchr(dir, '/')))
                *slash = 0;
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        r = write_file_atomic(path, data ? data : "", data ? strlen(data) : 0, 0644);
        if (r >= 0)
                c->files++;
        return r;
}

/* The collection was interrupted: say so in commands.txt, once. */
static bool stopped(struct collector *c)
{
        if (cancel_check(c->o->cancel) != -ECANCELED)
                return false;
        if (!c->stopped)
                fprintf(c->index, "(interrupted: the remaining commands were skipped)\n");
        c->stopped = true;
        return true;
}

/* Run kubectl ARGS; write stdout to rel (when the command produced any) and
 * record the command in commands.txt. Returns the captured stdout in *ret
 * when asked. */
static int kubectl(struct collector *c, const char *rel, char **ret, const char *first, ...)
{
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *kc_env = NULL, *line = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        char *env_set[2] = {NULL, NULL};
        struct cancel token;
        va_list ap;
        int r;

        if (stopped(c))
                return -ECANCELED;
        if (strv_extend(&argv, c->o->kubectl ? c->o->kubectl : "kubectl") < 0)
                return -ENOMEM;
        va_start(ap, first);
        for (const char *a = first; a; a = va_arg(ap, const char *))
                if (strv_extend(&argv, a) < 0) {
                        va_end(ap);
                        return -ENOMEM;
                }
        va_end(ap);
        if (c->o->kubeconfig) {
                kc_env = strdup_printf("KUBECONFIG=%s", c->o->kubeconfig);
                if (!kc_env)
                        return -ENOMEM;
                env_set[0] = kc_env;
        }
        cancel_init_child(&token, c->o->cancel, c->o->timeout > 0 ? c->o->timeout : 120,
                          "an artifact command");
        struct proc_opts po = {
            .argv = argv,
            .env_set = env_set,
            .out = PROC_CAPTURE,
            .err = PROC_CAPTURE,
            .log_fd = c->o->log_fd,
            .log_prefix = "collect",
            .cancel = &token,
        };
        line = shell_join(argv);
        r = proc_run(&po, &res);
        if (r < 0) {
                fprintf(c->index, "%s\n  -> cannot run: %s\n", line ? line : argv[0], strerror(-r));
                return r;
        }
        fprintf(c->index, "%s\n  -> exit %d%s%s%s", line ? line : argv[0], res.exit_code,
                res.stopped_by == -ETIMEDOUT   ? " (timed out)"
                : res.stopped_by == -ECANCELED ? " (interrupted)"
                                               : "",
                rel ? ", saved to " : "", rel ? rel : "");
        if (!isempty(res.err.data)) {
                /* First line of stderr is usually the whole story (NotFound...). */
                size_t k = strcspn(res.err.data, "\n");
                fprintf(c->index, ", stderr: %.*s", (int)(k > 300 ? 300 : k), res.err.data);
        }
        fputc('\n', c->index);
        if (rel && !isempty(res.out.data))
                save(c, rel, res.out.data);
        if (ret)
                *ret = res.exit_code == 0 ? buf_steal(&res.out) : NULL;
        return res.exit_code == 0 ? 0 : -EIO;
}

/* "ns/name" pairs of the items of a kubectl list. */
static char **list_pods(const char *json)
{
        _cleanup_strv_free_ char **l = NULL;
        cJSON *root = cJSON_Parse(json), *items, *it;

        if (!root)
                return NULL;
        items = cJSON_GetObjectItemCaseSensitive(root, "items");
        cJSON_ArrayForEach(it, items)
        {
                cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
                const char *ns =
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
                const char *name =
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));

                if (!ns || !name || strv_push(&l, strdup_printf("%s/%s", ns, name)) < 0)
                        continue;
        }
        cJSON_Delete(root);
        return TAKE_PTR(l);
}

/* Launchers of a big failing run can number in the hundreds; the first ones
 * tell the story. */
#define MAX_PODS 20

static void collect_launchers(struct collector *c)
{
        _cleanup_free_ char *json = NULL;
        _cleanup_strv_free_ char **pods = NULL;

        if (kubectl(c, "virt-launcher-pods.json", &json, "get", "pods", "--all-namespaces", "-l",
                    "kubevirt.io=virt-launcher", "-o", "json", NULL) < 0 ||
            !json)
                return;
        pods = list_pods(json);
        for (size_t i = 0; pods && pods[i] && i < MAX_PODS; i++) {
                _cleanup_free_ char *ns = strndup(pods[i], strcspn(pods[i], "/"));
                const char *name = strchr(pods[i], '/') + 1;
                _cleanup_free_ char *base = strdup_printf("pods/%s_%s", ns, name);
                _cleanup_free_ char *f_log = strdup_printf("%s.log", base);
                _cleanup_free_ char *f_yaml = strdup_printf("%s.yaml", base);
                _cleanup_free_ char *f_xml = strdup_printf("%s.domain.xml", base);
                _cleanup_free_ char *f_qemu = strdup_printf("%s.qemu.log", base);

                if (!ns || !f_log || !f_yaml || !f_xml || !f_qemu)
                        return;
                kubectl(c, f_log, NULL, "logs", "-n", ns, name, "--all-containers=true", NULL);
                kubectl(c, f_yaml, NULL, "get", "pod", "-n", ns, name, "-o", "yaml", NULL);
                kubectl(c, f_xml, NULL, "exec", "-n", ns, name, "-c", "compute", "--", "sh", "-c",
                        dump_domain_script, NULL);
                kubectl(c, f_qemu, NULL, "exec", "-n", ns, name, "-c", "compute", "--", "sh", "-c",
                        qemu_log_script, NULL);
        }
}

static void collect_webhook(struct collector *c)
{
        _cleanup_free_ char *json = NULL;
        _cleanup_strv_free_ char **pods = NULL;

        if (kubectl(c, NULL, &json, "get", "pods", "--all-namespaces", "-l",
                    COLLECT_WEBHOOK_SELECTOR, "-o", "json", NULL) < 0 ||
            !json)
                return;
        pods = list_pods(json);
        for (size_t i = 0; pods && pods[i] && i < MAX_PODS; i++) {
                _cleanup_free_ char *ns = strndup(pods[i], strcspn(pods[i], "/"));
                const char *name = strchr(pods[i], '/') + 1;
                _cleanup_free_ char *rel = strdup_printf("webhook/%s_%s.log", ns, name);

                if (!ns || !rel)
                        return;
                kubectl(c, rel, NULL, "logs", "-n", ns, name, "--all-containers=true", NULL);
        }
}

static void collect_nodes(struct collector *c)
{
        struct node_target *nodes = NULL;
        size_t n = 0;

        if (!c->o->state || state_get_nodes(c->o->state, &nodes, &n) < 0)
                return;
        for (size_t i = 0; i < n && !stopped(c); i++) {
                struct ssh_node *sn = NULL;
                _cleanup_proc_result_ struct proc_result res = {0};
                _cleanup_free_ char *rel = strdup_printf("nodes/%s.probe.txt", nodes[i].name);
                int r;

                if (!rel)
                        break;
                struct cancel token;
                r = ssh_node_connect(&nodes[i], 15, &sn);
                if (r < 0) {
                        fprintf(c->index, "ssh %s: probe\n  -> cannot connect: %s\n", nodes[i].name,
                                r == -EPERM       ? "host key does not match the pinned one"
                                : r == -ETIMEDOUT ? "sshd did not answer in time"
                                                  : strerror(-r));
                        continue;
                }
                cancel_init_child(&token, c->o->cancel, 60, "the node probe");
                ssh_node_set_cancel(sn, &token);
                r = ssh_node_run_script(sn, node_probe_script, &res);
                fprintf(c->index, "ssh %s: probe\n  -> %s %d, saved to %s\n", nodes[i].name,
                        r < 0 ? "error" : "exit", r < 0 ? r : res.exit_code, rel);
                if (r >= 0)
                        save(c, rel, res.out.data);
                ssh_node_free(sn);
        }
        free(nodes);
}

int collect_artifacts(const struct collect_opts *o, unsigned *ret_files)
{
        _cleanup_free_ char *index_path = strdup_printf("%s/commands.txt", o->out_dir);
        struct collector c = {.o = o};
        int r;

        if (!index_path)
                return log_error_errno(ENOMEM, "Out of memory");
        r = mkdir_p(o->out_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %s", o->out_dir, strerror(-r));
        c.index = fopen(index_path, "we");
        if (!c.index)
                return log_error_errno(errno, "Cannot create %s: %m", index_path);

        collect_launchers(&c);
        kubectl(&c, "vmis.yaml", NULL, "get", "vmis", "--all-namespaces", "-o", "yaml", NULL);
        kubectl(&c, "events.txt", NULL, "get", "events", "--all-namespaces",
                "--sort-by=.lastTimestamp", NULL);
        collect_webhook(&c);
        collect_nodes(&c);
        fclose(c.index);
        c.files++;
        if (ret_files)
                *ret_files = c.files;
        return 0;
}
