/* Node setup shared by every VM provider (see provision/node_setup.h).
 *
 * Each step reads the node's current state before writing, so a second run
 * on a node that is already set up writes nothing and restarts nothing; the
 * verdict's "changed" list says what a run did. Remote commands are argv
 * vectors quoted by ssh_node_run, or fixed scripts without any input spliced
 * in. Each node_step_* is one plan step per node (node_setup_plan.c runs
 * them in a lane per node); node_setup_one runs them in a row, for tests. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "provision/node_setup.h"
#include "provision/node_setup_internal.h"
#include "provision/vgpu/vgpu.h"

/* The mesa files on the node and everything they load (ldd of the
 * libraries and of the DRI megadriver), so the CDI spec mounts the same
 * closure the webhook's hostPath profile does, for whatever distribution
 * the node runs. glibc itself is left out: the container keeps its own.
 * /lib paths are shown under /usr on merged-/usr systems, as the webhook
 * names them. */
const char node_mesa_paths_script[] =
    "set -u\n"
    "found=''\n"
    "for d in /usr/lib/x86_64-linux-gnu /usr/lib64; do\n"
    "  for f in libEGL.so.1 libEGL_mesa.so.0 libGL.so.1 libGLX.so.0 libGLX_mesa.so.0 \\\n"
    "           libGLdispatch.so.0 libOpenGL.so.0 libGLESv2.so.2 libgbm.so.1 libglapi.so.0; do\n"
    "    [ -e \"$d/$f\" ] && found=\"$found $d/$f\"\n"
    "  done\n"
    "  if [ -d \"$d/dri\" ]; then\n"
    "    echo \"$d/dri\"\n"
    "    for f in \"$d\"/dri/*_dri.so; do [ -e \"$f\" ] && found=\"$found $f\" && break; done\n"
    "  fi\n"
    "done\n"
    "[ -d /usr/share/glvnd/egl_vendor.d ] && echo /usr/share/glvnd/egl_vendor.d\n"
    "for f in $found; do case \"$f\" in */dri/*) ;; *) echo \"$f\" ;; esac; done\n"
    /* One ldd and one awk for all of them: under TCG each process
     * started in the guest costs ~0.1 s, and this was 2 s per node. */
    "[ -n \"$found\" ] && ldd $found 2>/dev/null | awk '$2 == \"=>\" && $3 ~ /^\\// {print $3}' |\n"
    "while read -r p; do\n"
    "  case \"${p##*/}\" in\n"
    "    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libresolv.so.*) "
    "continue ;;\n"
    "  esac\n"
    "  case \"$p\" in\n"
    "    /lib/*|/lib64/*) [ -L /lib ] && p=\"/usr$p\" ;;\n"
    "  esac\n"
    "  echo \"$p\"\n"
    "done\n"
    "true\n";

char *node_cdi_spec(char *const *mount_paths)
{
        _cleanup_buf_ struct buf b = {0};
        _cleanup_free_ char *dev = strdup_printf(
            "# Written by vgpuenv: the render node for virt-launcher pods annotated\n"
            "# %s: %s (webhook cdi mode).\n"
            "cdiVersion: \"0.5.0\"\n"
            "kind: %s\n"
            "devices:\n"
            "  - name: %s\n"
            "    containerEdits:\n"
            "      deviceNodes:\n"
            "        - path: %s\n"
            "          type: c\n"
            "          fileMode: 438 # 0666\n"
            "          uid: %d\n"
            "          gid: %d\n"
            "containerEdits:\n"
            "  env:\n"
            "    - __EGL_VENDOR_LIBRARY_DIRS=/usr/share/glvnd/egl_vendor.d\n",
            VGPUENV_CDI_ANNOTATION, VGPUENV_CDI_QUALIFIED, VGPUENV_CDI_KIND, VGPUENV_CDI_DEVICE,
            VGPUENV_RENDER_NODE, VGPUENV_QEMU_UID, VGPUENV_QEMU_GID);
        if (!dev || buf_puts(&b, dev) < 0)
                return NULL;
        if (mount_paths && mount_paths[0] && buf_puts(&b, "  mounts:\n") < 0)
                return NULL;
        for (size_t i = 0; mount_paths && mount_paths[i]; i++) {
                _cleanup_free_ char *m =
                    strdup_printf("    - hostPath: %s\n"
                                  "      containerPath: %s\n"
                                  "      options: [ro, nosuid, nodev, rbind]\n",
                                  mount_paths[i], mount_paths[i]);
                if (!m || buf_puts(&b, m) < 0)
                        return NULL;
        }
        return buf_steal(&b);
}

static bool json_true(const cJSON *o, const char *key)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        if (cJSON_IsBool(v))
                return cJSON_IsTrue(v);
        if (cJSON_IsString(v))
                return streq(v->valuestring, "ok") || streq(v->valuestring, "pass") ||
                       streq(v->valuestring, "PASS");
        return false;
}

static void add_check(cJSON *verdict, const char *name, bool ok, const char *detail)
{
        cJSON *checks = cJSON_GetObjectItemCaseSensitive(verdict, "checks");
        if (!checks)
                checks = cJSON_AddArrayToObject(verdict, "checks");
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", name);
        cJSON_AddBoolToObject(c, "ok", ok);
        cJSON_AddStringToObject(c, "detail", detail ? detail : "");
        cJSON_AddItemToArray(checks, c);
}

static void set_ok(cJSON *verdict, bool ok)
{
        cJSON_DeleteItemFromObjectCaseSensitive(verdict, "ok");
        cJSON_AddBoolToObject(verdict, "ok", ok);
}

int node_probe_parse(const char *json_text, int exit_code, cJSON *verdict)
{
        cJSON *doc = json_text ? cJSON_Parse(json_text) : NULL;
        if (!doc) {
                add_check(verdict, "probe-output", false, "vgpuenv-probe --json printed no JSON");
                set_ok(verdict, false);
                return -EIO;
        }
        /* Either { "ok": .., "checks": [...] } (vgpuenv-probe --json) or a
         * bare array of checks. The probe's own "ok" decides when present:
         * a SKIP check (not applicable) does not fail a node by itself. */
        cJSON *arr = cJSON_IsArray(doc) ? doc : cJSON_GetObjectItemCaseSensitive(doc, "checks");
        bool has_ok = !cJSON_IsArray(doc) && cJSON_GetObjectItemCaseSensitive(doc, "ok");
        bool all = exit_code == 0 && cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0;
        cJSON *c;
        cJSON_ArrayForEach(c, arr)
        {
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
                const cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "detail");
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
                bool ok = json_true(c, "ok") || json_true(c, "result") || json_true(c, "pass");
                if (!has_ok)
                        all = all && ok;
                add_check(verdict, cJSON_IsString(n) ? n->valuestring : "?", ok,
                          cJSON_IsString(d) ? d->valuestring : "");
                if (cJSON_IsString(st)) {
                        cJSON *last =
                            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(verdict, "checks"),
                                               cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                                                   verdict, "checks")) -
                                                   1);
                        cJSON_AddStringToObject(last, "status", st->valuestring);
                }
        }
        if (has_ok)
                all = all && json_true(doc, "ok");
        cJSON_Delete(doc);
        set_ok(verdict, all);
        return all ? 0 : -EIO;
}

static void changed(cJSON *verdict, const char *what)
{
        cJSON *ch = cJSON_GetObjectItemCaseSensitive(verdict, "changed");
        cJSON_AddItemToArray(ch, cJSON_CreateString(what));
        log_info("    %s: %s", cJSON_GetObjectItemCaseSensitive(verdict, "node")->valuestring,
                 what);
}

static int run_argv(const struct node_io *io, const char *node, char *const *argv,
                    struct proc_result *res, bool must_succeed)
{
        int r = io->run(io->userdata, argv, res);
        if (r < 0)
                return log_error_errno(r, "%s: could not run %s", node, argv[0]);
        if (must_succeed && res->exit_code != 0) {
                _cleanup_free_ char *cmd = shell_join(argv);
                return log_error_errno(EIO, "%s: '%s' failed (exit %d): %s", node,
                                       cmd ? cmd : argv[0], res->exit_code,
                                       res->err.data ? res->err.data : "");
        }
        return 0;
}

/* Run argv and only tell whether it succeeded (or the errno of ssh). */
static int run_ok(const struct node_io *io, const char *node, char *const *argv, bool *ok)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        int r = run_argv(io, node, argv, &res, false);
        *ok = r >= 0 && res.exit_code == 0;
        return r;
}

/* Read a remote file; *ret is NULL when it does not exist. */
static int read_remote(const struct node_io *io, const char *node, const char *path, char **ret)
{
        char *const argv[] = {"cat", (char *)path, NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        int r = run_argv(io, node, argv, &res, false);
        if (r < 0)
                return r;
        *ret = res.exit_code == 0 ? buf_steal(&res.out) : NULL;
        return 0;
}

/* Write content to path unless it already holds exactly that. Returns 1
 * when written, 0 when unchanged. */
static int ensure_file(const struct node_io *io, const char *node, const char *path,
                       const char *content, mode_t mode)
{
        _cleanup_free_ char *cur = NULL, *dir = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        int r = read_remote(io, node, path, &cur);
        if (r < 0)
                return r;
        if (cur && streq(cur, content))
                return 0;
        if (!(dir = strdup(path)))
                return -ENOMEM;
        *strrchr(dir, '/') = 0;
        char *const mk[] = {"mkdir", "-p", dir, NULL};
        if ((r = run_argv(io, node, mk, &res, true)) < 0)
                return r;
        r = io->upload_data(io->userdata, content, strlen(content), path, mode);
        if (r < 0)
                return log_error_errno(r, "%s: could not write %s", node, path);
        return 1;
}

/* apt-get/dnf for the missing ones; a fresh cloud image often has no
 * package lists yet, so apt-get update once on a failure. */
static int install_missing(const struct node_io *io, const char *node, enum distro_family family,
                           char **missing)
{
        _cleanup_strv_free_ char **inst = node_pkg_install_argv(family, missing);
        _cleanup_proc_result_ struct proc_result res = {0};
        if (!inst)
                return log_error_errno(ENOMEM, "out of memory");
        int r = run_argv(io, node, inst, &res, false);
        if (r >= 0 && res.exit_code != 0 && family != FAMILY_RHEL) {
                char *const upd[] = {"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update",
                                     NULL};
                proc_result_done(&res);
                r = run_argv(io, node, upd, &res, true);
                proc_result_done(&res);
                if (r >= 0)
                        r = run_argv(io, node, inst, &res, false);
        }
        if (r >= 0 && res.exit_code != 0) {
                _cleanup_free_ char *cmd = shell_join(inst);
                r = log_error_errno(EIO, "%s: installing mesa failed: '%s' (exit %d): %s", node,
                                    cmd ? cmd : "install", res.exit_code,
                                    res.err.data ? res.err.data : "");
        }
        return r;
}

int node_step_mesa(struct run_ctx *ctx, const struct node_io *io, const char *node,
                   enum distro_family family, cJSON *verdict)
{
        /* config_mesa_packages() hands back the config's own list or static
         * defaults; not ours to free. */
        char **pkgs = config_mesa_packages(ctx->cfg, family);
        _cleanup_strv_free_ char **q = NULL, **missing = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        int r;

        if (!pkgs || !pkgs[0])
                return 0;
        if (!(q = node_pkg_query_argv(family, pkgs)))
                return log_error_errno(ENOMEM, "out of memory");
        if ((r = run_argv(io, node, q, &res, false)) < 0 ||
            (r = node_pkg_parse_missing(family, pkgs, res.out.data, &missing)) < 0)
                return r;
        if (!missing)
                return 0;
        if ((r = install_missing(io, node, family, missing)) < 0)
                return r;
        _cleanup_free_ char *list = strv_join(missing, " ");
        _cleanup_free_ char *what = strdup_printf("installed %s", list ? list : "mesa");
        changed(verdict, what ? what : "installed mesa");
        return 0;
}

int node_step_module(struct run_ctx *ctx, const struct node_io *io, const char *node,
                     enum distro_family family, cJSON *verdict)
{
        bool loaded;
        int r;

        (void)ctx, (void)family;
        r = ensure_file(io, node, NODE_MODULES_LOAD_PATH, node_modules_load_text, 0644);
        if (r < 0)
                return r;
        if (r > 0)
                changed(verdict, "wrote " NODE_MODULES_LOAD_PATH);
        char *const test[] = {"test", "-d", "/sys/module/virtio_gpu", NULL};
        if ((r = run_ok(io, node, test, &loaded)) < 0 || loaded)
                return r;
        _cleanup_proc_result_ struct proc_result res = {0};
        char *const mp[] = {"modprobe", "virtio-gpu", NULL};
        if ((r = run_argv(io, node, mp, &res, true)) < 0)
                return r;
        changed(verdict, "loaded virtio-gpu");
        return 0;
}

/* The render node's mode, "666" when uid 107 can open it; present says
 * whether it exists at all. */
static int render_mode(const struct node_io *io, const char *node, bool *present, bool *mode_ok)
{
        char *const st[] = {"stat", "-c", "%a", VGPUENV_RENDER_NODE, NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        int r = run_argv(io, node, st, &res, false);

        if (r < 0)
                return r;
        *present = res.exit_code == 0;
        *mode_ok = *present && res.out.data && strncmp(res.out.data, "666", 3) == 0;
        return 0;
}

int node_step_udev(struct run_ctx *ctx, const struct node_io *io, const char *node,
                   enum distro_family family, cJSON *verdict)
{
        bool present, mode_ok;
        int r;

        (void)ctx, (void)family;
        r = ensure_file(io, node, NODE_UDEV_RULE_PATH, node_udev_rule_text, 0644);
        if (r < 0)
                return r;
        bool wrote = r > 0;
        if (wrote)
                changed(verdict, "wrote " NODE_UDEV_RULE_PATH);
        if ((r = render_mode(io, node, &present, &mode_ok)) < 0)
                return r;
        if (wrote || (present && !mode_ok)) {
                static const char script[] =
                    "udevadm control --reload-rules && "
                    "udevadm trigger --subsystem-match=drm --action=change && "
                    "udevadm settle --timeout=10";
                _cleanup_proc_result_ struct proc_result res = {0};
                r = io->run_script(io->userdata, script, &res);
                if (r >= 0 && res.exit_code != 0)
                        r = log_error_errno(EIO, "%s: udevadm failed (exit %d): %s", node,
                                            res.exit_code, res.err.data ? res.err.data : "");
                if (r < 0)
                        return r;
                changed(verdict, "applied udev rule to " VGPUENV_RENDER_NODE);
                if ((r = render_mode(io, node, &present, &mode_ok)) < 0)
                        return r;
        }
        add_check(verdict, "render node usable by uid 107", mode_ok,
                  !present  ? VGPUENV_RENDER_NODE " missing"
                  : mode_ok ? "mode 0666"
                            : "mode is not 0666 after udev trigger");
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int node_step_cdi(struct run_ctx *ctx, const struct node_io *io, const char *node,
                  enum distro_family family, cJSON *verdict)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        _cleanup_strv_free_ char **paths = NULL;
        char *save = NULL;
        int r;

        (void)ctx, (void)family;
        r = io->run_script(io->userdata, node_mesa_paths_script, &res);
        if (r < 0)
                return log_error_errno(r, "%s: could not list mesa files", node);
        for (char *tok = res.out.data ? strtok_r(res.out.data, "\n", &save) : NULL; tok;
             tok = strtok_r(NULL, "\n", &save))
                if (*tok == '/' && !strv_contains(paths, tok) && strv_extend(&paths, tok) < 0)
                        return log_error_errno(ENOMEM, "out of memory");
        /* A stable order: the spec is compared byte for byte next time. */
        if (paths)
                qsort(paths, strv_length(paths), sizeof(char *), cmp_str);
        _cleanup_free_ char *spec = node_cdi_spec(paths);
        if (!spec)
                return log_error_errno(ENOMEM, "out of memory");
        r = ensure_file(io, node, VGPUENV_CDI_SPEC_PATH, spec, 0644);
        if (r > 0)
                changed(verdict, "wrote " VGPUENV_CDI_SPEC_PATH);
        return r < 0 ? r : 0;
}

/* The probe binary on the node, uploaded when its checksum differs. */
static int ensure_probe(struct run_ctx *ctx, const struct node_io *io, const char *node,
                        cJSON *verdict)
{
        _cleanup_free_ char *local = strdup_printf("%s/vgpuenv-probe", ctx->build_dir);
        _cleanup_proc_result_ struct proc_result res = {0};
        char want[65];
        int r;

        if (!local)
                return log_error_errno(ENOMEM, "out of memory");
        if ((r = sha256_file_hex(local, want)) < 0)
                return log_error_errno(r, "%s: cannot read %s (run make first)", node, local);
        char *const sum[] = {"sha256sum", NODE_PROBE_PATH, NULL};
        if ((r = run_argv(io, node, sum, &res, false)) < 0)
                return r;
        if (res.exit_code == 0 && res.out.data && strncmp(res.out.data, want, 64) == 0)
                return 0;
        proc_result_done(&res);
        char *const mk[] = {"mkdir", "-p", "/usr/local/bin", NULL};
        if ((r = run_argv(io, node, mk, &res, true)) < 0)
                return r;
        if ((r = io->upload(io->userdata, local, NODE_PROBE_PATH, 0755)) < 0)
                return log_error_errno(r, "%s: could not upload %s", node, local);
        changed(verdict, "uploaded " NODE_PROBE_PATH);
        return 0;
}

/* The probe's verdict is data: a failed probe returns 0 with "ok": false
 * (the node is up and inspectable); only a failure to run it (ssh lost,
 * upload failed) is an error. */
int node_step_probe(struct run_ctx *ctx, const struct node_io *io, const char *node,
                    enum distro_family family, cJSON *verdict)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        int r;

        (void)family;
        if ((r = ensure_probe(ctx, io, node, verdict)) < 0)
                return r;
        char *const probe[] = {NODE_PROBE_PATH, "--json", NULL};
        if ((r = run_argv(io, node, probe, &res, false)) < 0)
                return r;
        r = node_probe_parse(res.out.data, res.exit_code, verdict);
        if (r < 0 && !isempty(res.err.data))
                cJSON_AddStringToObject(verdict, "probe_stderr", res.err.data);
        /* A setup check (render node mode) failing fails the node too. */
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(verdict, "checks"))
        {
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
                if (!(cJSON_IsString(st) && streq(st->valuestring, "SKIP")) && !json_true(c, "ok"))
                        set_ok(verdict, false);
        }
        return 0;
}

enum distro_family node_detect_family(const struct node_io *io, const char *node,
                                      enum distro_family recorded)
{
        _cleanup_free_ char *osr = NULL;
        enum distro_family f;

        /* What the node says wins; the recorded or configured family only
         * covers nodes whose /etc/os-release we do not know. */
        if (read_remote(io, node, "/etc/os-release", &osr) < 0)
                return recorded;
        f = node_family_from_os_release(osr);
        return f != FAMILY_AUTO ? f : recorded;
}

void node_verdict_init(cJSON *verdict, const char *name)
{
        if (!cJSON_GetObjectItemCaseSensitive(verdict, "node"))
                cJSON_AddStringToObject(verdict, "node", name);
        if (!cJSON_GetObjectItemCaseSensitive(verdict, "ok"))
                cJSON_AddBoolToObject(verdict, "ok", false);
        if (!cJSON_GetObjectItemCaseSensitive(verdict, "changed"))
                cJSON_AddArrayToObject(verdict, "changed");
        if (!cJSON_GetObjectItemCaseSensitive(verdict, "checks"))
                cJSON_AddArrayToObject(verdict, "checks");
}

void node_verdict_error(cJSON *verdict, int r)
{
        cJSON_DeleteItemFromObjectCaseSensitive(verdict, "error");
        cJSON_AddStringToObject(verdict, "error", strerror(-r));
        set_ok(verdict, false);
}

const struct node_step_def node_step_defs[] = {
    {"mesa", "mesa packages: install those missing (dpkg-query/apt-get, or rpm/dnf)",
     node_step_mesa, true},
    {"virtio-gpu", "virtio-gpu: listed in " NODE_MODULES_LOAD_PATH ", loaded", node_step_module,
     true},
    {"render-node", "render node mode 0666 for uid 107 (" NODE_UDEV_RULE_PATH ", udevadm)",
     node_step_udev, true},
    {"cdi", "CDI spec " VGPUENV_CDI_SPEC_PATH " with the mesa files", node_step_cdi, true},
    /* The fake vGPU (provision/vgpu/): its own "vgpu" row in the verdict. */
    {"vgpu", "fake NVIDIA T4 vGPU " VGPU_MODULE ": built for the node's kernel, loaded, checked",
     vgpu_node_step, true, vgpu_node_detail, vgpu_node_deadline},
    {"probe", "render-node probe: upload " NODE_PROBE_PATH ", run it --json", node_step_probe,
     false},
    {},
};

int node_setup_one(struct run_ctx *ctx, const struct node_io *io, const char *name,
                   enum distro_family family, bool setup, cJSON *verdict)
{
        int r = 0;

        node_verdict_init(verdict, name);
        if (setup) {
                family = node_detect_family(io, name, family);
                if (family == FAMILY_AUTO) {
                        r = log_error_errno(EOPNOTSUPP,
                                            "%s: unknown distribution in /etc/os-release "
                                            "(need a Debian or RHEL family node; set image.family)",
                                            name);
                        node_verdict_error(verdict, r);
                        return r;
                }
                cJSON_AddStringToObject(verdict, "family", family_names[family]);
        }
        for (const struct node_step_def *d = node_step_defs; d->name && r >= 0; d++)
                if (setup || !d->setup_only)
                        r = d->run(ctx, io, name, family, verdict);
        if (r < 0)
                node_verdict_error(verdict, r);
        return r;
}

void node_verdicts_print(const cJSON *verdicts, FILE *out)
{
        const cJSON *v;
        if (cJSON_GetArraySize(verdicts) == 0)
                return;
        fprintf(out, "%-24s %-34s %-6s %s\n", "NODE", "CHECK", "RESULT", "DETAIL");
        cJSON_ArrayForEach(v, verdicts)
        {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "node");
                const char *node = cJSON_IsString(name) ? name->valuestring : "?";
                const cJSON *c;
                cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(v, "checks"))
                {
                        const cJSON *cn = cJSON_GetObjectItemCaseSensitive(c, "name");
                        const cJSON *cd = cJSON_GetObjectItemCaseSensitive(c, "detail");
                        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(c, "status");
                        fprintf(out, "%-24s %-34s %-6s %s\n", node,
                                cJSON_IsString(cn) ? cn->valuestring : "?",
                                cJSON_IsString(cs) && streq(cs->valuestring, "SKIP") ? "skip"
                                : json_true(c, "ok")                                 ? "ok"
                                                                                     : "FAIL",
                                cJSON_IsString(cd) ? cd->valuestring : "");
                }
                const cJSON *err = cJSON_GetObjectItemCaseSensitive(v, "error");
                if (cJSON_IsString(err))
                        fprintf(out, "%-24s %-34s %-6s %s\n", node, "setup", "FAIL",
                                err->valuestring);
                fprintf(out, "%-24s %-34s %s\n", node, "verdict",
                        json_true(v, "ok") ? "PASS" : "FAIL");
        }
}
