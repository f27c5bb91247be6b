/* Node setup shared by every VM provider (see provision/node_setup.h).
 *
 * Each step reads the node's current state before writing, so a second run
 * on a node that is already set up writes nothing and restarts nothing; the
 * verdict's "changed" list says what a run did. Remote commands are argv
 * vectors quoted by ssh_node_run, or fixed scripts without any input spliced
 * in. One thread per node: nodes are independent and the slow parts (package
 * install, probe under TCG) overlap. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "provision/node_setup.h"
#include "provision/node_setup_internal.h"
#include "provision/base/ssh.h"
#include "provision/vgpu/vgpu.h"

const char node_modules_load_text[] =
    "# Written by vgpuenv: the render node the vGPU display needs comes from virtio-gpu.\n"
    "virtio-gpu\n";

/* MODE 0666 rather than a GROUP: gid 107 has no name on most nodes, and
 * QEMU in virt-launcher runs as uid/gid 107 with no supplementary groups. */
const char node_udev_rule_text[] =
    "# Written by vgpuenv: virt-launcher's QEMU (uid/gid 107) must open the render node.\n"
    "SUBSYSTEM==\"drm\", KERNEL==\"renderD*\", MODE=\"0666\"\n";

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

static bool os_release_names(const char *text, const char *key, const char *const *names)
{
        size_t klen = strlen(key);
        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
                        _cleanup_free_ char *v = strndup(line + klen + 1, len - klen - 1);
                        if (!v)
                                return false;
                        /* Values may be quoted and ID_LIKE is a space separated list. */
                        for (char *tok = strtok(v, "\"' \t"); tok; tok = strtok(NULL, "\"' \t"))
                                for (size_t i = 0; names[i]; i++)
                                        if (streq(tok, names[i]))
                                                return true;
                }
                line = eol ? eol + 1 : NULL;
        }
        return false;
}

enum distro_family node_family_from_os_release(const char *text)
{
        static const char *const debian[] = {"debian", "ubuntu", NULL};
        static const char *const rhel[] = {"rhel", "fedora", "centos", "rocky", "almalinux", NULL};

        if (!text)
                return FAMILY_AUTO;
        /* ID wins over ID_LIKE (Ubuntu is ID_LIKE=debian, CentOS ID_LIKE="rhel fedora"). */
        if (os_release_names(text, "ID", debian))
                return FAMILY_DEBIAN;
        if (os_release_names(text, "ID", rhel))
                return FAMILY_RHEL;
        if (os_release_names(text, "ID_LIKE", debian))
                return FAMILY_DEBIAN;
        if (os_release_names(text, "ID_LIKE", rhel))
                return FAMILY_RHEL;
        return FAMILY_AUTO;
}

static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
        size_t n = strlen(s);
        if (*len + n + 1 > *cap) {
                size_t ncap = (*cap + n + 1) * 2;
                char *nb = realloc(*buf, ncap);
                if (!nb)
                        return -ENOMEM;
                *buf = nb;
                *cap = ncap;
        }
        memcpy(*buf + *len, s, n + 1);
        *len += n;
        return 0;
}

char *node_cdi_spec(char *const *mount_paths)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
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
        if (!dev || append(&buf, &len, &cap, dev) < 0)
                return NULL;
        if (mount_paths && mount_paths[0] && append(&buf, &len, &cap, "  mounts:\n") < 0)
                return NULL;
        for (size_t i = 0; mount_paths && mount_paths[i]; i++) {
                _cleanup_free_ char *m =
                    strdup_printf("    - hostPath: %s\n"
                                  "      containerPath: %s\n"
                                  "      options: [ro, nosuid, nodev, rbind]\n",
                                  mount_paths[i], mount_paths[i]);
                if (!m || append(&buf, &len, &cap, m) < 0)
                        return NULL;
        }
        return TAKE_PTR(buf);
}

char **node_pkg_query_argv(enum distro_family family, char *const *pkgs)
{
        _cleanup_strv_free_ char **argv = NULL;
        if (family == FAMILY_RHEL) {
                if (strv_extend(&argv, "rpm") < 0 || strv_extend(&argv, "-q") < 0 ||
                    strv_extend(&argv, "--qf") < 0 || strv_extend(&argv, "%{NAME}\\n") < 0)
                        return NULL;
        } else {
                if (strv_extend(&argv, "dpkg-query") < 0 || strv_extend(&argv, "-W") < 0 ||
                    strv_extend(&argv, "-f") < 0 ||
                    strv_extend(&argv, "${Status} ${Package}\\n") < 0)
                        return NULL;
        }
        for (size_t i = 0; pkgs && pkgs[i]; i++)
                if (strv_extend(&argv, pkgs[i]) < 0)
                        return NULL;
        return TAKE_PTR(argv);
}

/* Is there a line that says pkg is installed? dpkg: "install ok installed
 * NAME" (NAME may carry ":arch"); rpm --qf: "NAME" alone. */
static bool pkg_installed_in(enum distro_family family, const char *pkg, const char *out)
{
        size_t plen = strlen(pkg);
        for (const char *line = out; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                const char *name = line;
                size_t nlen = len;
                bool ok = true;
                if (family != FAMILY_RHEL) {
                        static const char st[] = "install ok installed ";
                        ok = len > sizeof(st) - 1 && strncmp(line, st, sizeof(st) - 1) == 0;
                        name = line + sizeof(st) - 1;
                        nlen = ok ? len - (sizeof(st) - 1) : 0;
                        const char *colon = memchr(name, ':', nlen);
                        if (colon)
                                nlen = colon - name;
                }
                if (ok && nlen == plen && strncmp(name, pkg, plen) == 0)
                        return true;
                line = eol ? eol + 1 : NULL;
        }
        return false;
}

int node_pkg_parse_missing(enum distro_family family, char *const *pkgs, const char *out,
                           char ***ret_missing)
{
        _cleanup_strv_free_ char **missing = NULL;
        for (size_t i = 0; pkgs && pkgs[i]; i++)
                if (!pkg_installed_in(family, pkgs[i], out ? out : ""))
                        if (strv_extend(&missing, pkgs[i]) < 0)
                                return -ENOMEM;
        *ret_missing = TAKE_PTR(missing);
        return 0;
}

char **node_pkg_install_argv(enum distro_family family, char *const *pkgs)
{
        _cleanup_strv_free_ char **argv = NULL;
        static const char *const apt[] = {
            "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install",
            "-y",  "--no-install-recommends",        NULL};
        static const char *const dnf[] = {"dnf", "install", "-y", NULL};
        const char *const *head = family == FAMILY_RHEL ? dnf : apt;
        for (size_t i = 0; head[i]; i++)
                if (strv_extend(&argv, head[i]) < 0)
                        return NULL;
        for (size_t i = 0; pkgs && pkgs[i]; i++)
                if (strv_extend(&argv, pkgs[i]) < 0)
                        return NULL;
        return TAKE_PTR(argv);
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
        log_info("%s: %s", cJSON_GetObjectItemCaseSensitive(verdict, "node")->valuestring, what);
}

static int run_argv(const struct node_io *io, const char *node, char *const *argv,
                    struct spawn_result *res, bool must_succeed)
{
        int r = io->run(io->userdata, argv, res);
        if (r < 0)
                return log_error_errno(r, "%s: could not run %s", node, argv[0]);
        if (must_succeed && res->exit_code != 0) {
                _cleanup_free_ char *cmd = shell_join(argv);
                return log_error_errno(EIO, "%s: '%s' failed (exit %d): %s", node,
                                       cmd ? cmd : argv[0], res->exit_code,
                                       res->err ? res->err : "");
        }
        return 0;
}

/* Read a remote file; *ret is NULL when it does not exist. */
static int read_remote(const struct node_io *io, const char *node, const char *path, char **ret)
{
        char *const argv[] = {"cat", (char *)path, NULL};
        struct spawn_result res = {};
        int r = run_argv(io, node, argv, &res, false);
        if (r < 0)
                return r;
        *ret = res.exit_code == 0 ? TAKE_PTR(res.out) : NULL;
        spawn_result_done(&res);
        return 0;
}

/* Write content to path unless it already holds exactly that. Returns 1
 * when written, 0 when unchanged. */
static int ensure_file(const struct node_io *io, const char *node, const char *path,
                       const char *content, mode_t mode)
{
        _cleanup_free_ char *cur = NULL;
        int r = read_remote(io, node, path, &cur);
        if (r < 0)
                return r;
        if (cur && streq(cur, content))
                return 0;
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = 0;
        char *const mk[] = {"mkdir", "-p", dir, NULL};
        struct spawn_result res = {};
        r = run_argv(io, node, mk, &res, true);
        spawn_result_done(&res);
        if (r < 0)
                return r;
        r = io->upload_data(io->userdata, content, strlen(content), path, mode);
        if (r < 0)
                return log_error_errno(r, "%s: could not write %s", node, path);
        return 1;
}

static int step_mesa(struct run_ctx *ctx, const struct node_io *io, const char *node,
                     enum distro_family family, cJSON *verdict)
{
        /* config_mesa_packages() hands back the config's own list or static
         * defaults; not ours to free. */
        char **pkgs = config_mesa_packages(ctx->cfg, family);
        if (!pkgs || !pkgs[0])
                return 0;
        _cleanup_strv_free_ char **q = node_pkg_query_argv(family, pkgs);
        if (!q)
                return log_error_errno(ENOMEM, "out of memory");
        struct spawn_result res = {};
        int r = run_argv(io, node, q, &res, false);
        _cleanup_strv_free_ char **missing = NULL;
        if (r >= 0)
                r = node_pkg_parse_missing(family, pkgs, res.out, &missing);
        spawn_result_done(&res);
        if (r < 0)
                return r;
        if (!missing)
                return 0;

        _cleanup_strv_free_ char **inst = node_pkg_install_argv(family, missing);
        if (!inst)
                return log_error_errno(ENOMEM, "out of memory");
        r = run_argv(io, node, inst, &res, false);
        if (r >= 0 && res.exit_code != 0 && family != FAMILY_RHEL) {
                /* A fresh cloud image often has no package lists yet. */
                spawn_result_done(&res);
                char *const upd[] = {"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update",
                                     NULL};
                r = run_argv(io, node, upd, &res, true);
                spawn_result_done(&res);
                if (r >= 0)
                        r = run_argv(io, node, inst, &res, false);
        }
        if (r >= 0 && res.exit_code != 0) {
                _cleanup_free_ char *cmd = shell_join(inst);
                r = log_error_errno(EIO, "%s: installing mesa failed: '%s' (exit %d): %s", node,
                                    cmd ? cmd : "install", res.exit_code, res.err ? res.err : "");
        }
        spawn_result_done(&res);
        if (r < 0)
                return r;
        _cleanup_free_ char *list = strv_join(missing, " ");
        _cleanup_free_ char *what = strdup_printf("installed %s", list ? list : "mesa");
        changed(verdict, what ? what : "installed mesa");
        return 0;
}

static int step_module(const struct node_io *io, const char *node, cJSON *verdict)
{
        int r = ensure_file(io, node, NODE_MODULES_LOAD_PATH, node_modules_load_text, 0644);
        if (r < 0)
                return r;
        if (r > 0)
                changed(verdict, "wrote " NODE_MODULES_LOAD_PATH);

        struct spawn_result res = {};
        char *const test[] = {"test", "-d", "/sys/module/virtio_gpu", NULL};
        r = run_argv(io, node, test, &res, false);
        int loaded = r >= 0 && res.exit_code == 0;
        spawn_result_done(&res);
        if (r < 0 || loaded)
                return r;
        char *const mp[] = {"modprobe", "virtio-gpu", NULL};
        r = run_argv(io, node, mp, &res, true);
        spawn_result_done(&res);
        if (r < 0)
                return r;
        changed(verdict, "loaded virtio-gpu");
        return 0;
}

static int step_udev(const struct node_io *io, const char *node, cJSON *verdict)
{
        int r = ensure_file(io, node, NODE_UDEV_RULE_PATH, node_udev_rule_text, 0644);
        if (r < 0)
                return r;
        bool wrote = r > 0;
        if (wrote)
                changed(verdict, "wrote " NODE_UDEV_RULE_PATH);

        struct spawn_result res = {};
        char *const st[] = {"stat", "-c", "%a", VGPUENV_RENDER_NODE, NULL};
        r = run_argv(io, node, st, &res, false);
        if (r < 0)
                return r;
        bool present = res.exit_code == 0;
        bool mode_ok = present && res.out && strncmp(res.out, "666", 3) == 0;
        spawn_result_done(&res);

        if (wrote || (present && !mode_ok)) {
                static const char script[] =
                    "udevadm control --reload-rules && "
                    "udevadm trigger --subsystem-match=drm --action=change && "
                    "udevadm settle --timeout=10";
                r = io->run_script(io->userdata, script, &res);
                if (r >= 0 && res.exit_code != 0)
                        r = log_error_errno(EIO, "%s: udevadm failed (exit %d): %s", node,
                                            res.exit_code, res.err ? res.err : "");
                spawn_result_done(&res);
                if (r < 0)
                        return r;
                changed(verdict, "applied udev rule to " VGPUENV_RENDER_NODE);
                r = run_argv(io, node, st, &res, false);
                if (r < 0)
                        return r;
                present = res.exit_code == 0;
                mode_ok = present && res.out && strncmp(res.out, "666", 3) == 0;
                spawn_result_done(&res);
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

static int step_cdi(const struct node_io *io, const char *node, cJSON *verdict)
{
        struct spawn_result res = {};
        int r = io->run_script(io->userdata, node_mesa_paths_script, &res);
        if (r < 0)
                return log_error_errno(r, "%s: could not list mesa files", node);
        _cleanup_strv_free_ char **paths = NULL;
        for (char *tok = res.out ? strtok(res.out, "\n") : NULL; tok; tok = strtok(NULL, "\n"))
                if (*tok == '/' && !strv_contains(paths, tok) && strv_extend(&paths, tok) < 0) {
                        spawn_result_done(&res);
                        return log_error_errno(ENOMEM, "out of memory");
                }
        spawn_result_done(&res);
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

static int step_probe(struct run_ctx *ctx, const struct node_io *io, const char *node,
                      cJSON *verdict)
{
        _cleanup_free_ char *local = strdup_printf("%s/vgpuenv-probe", ctx->build_dir);
        if (!local)
                return log_error_errno(ENOMEM, "out of memory");
        char want[65];
        int r = sha256_file_hex(local, want);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read %s (run make first)", node, local);

        struct spawn_result res = {};
        char *const sum[] = {"sha256sum", NODE_PROBE_PATH, NULL};
        r = run_argv(io, node, sum, &res, false);
        if (r < 0)
                return r;
        bool same = res.exit_code == 0 && res.out && strncmp(res.out, want, 64) == 0;
        spawn_result_done(&res);
        if (!same) {
                char *const mk[] = {"mkdir", "-p", "/usr/local/bin", NULL};
                r = run_argv(io, node, mk, &res, true);
                spawn_result_done(&res);
                if (r < 0)
                        return r;
                r = io->upload(io->userdata, local, NODE_PROBE_PATH, 0755);
                if (r < 0)
                        return log_error_errno(r, "%s: could not upload %s", node, local);
                changed(verdict, "uploaded " NODE_PROBE_PATH);
        }

        char *const probe[] = {NODE_PROBE_PATH, "--json", NULL};
        r = run_argv(io, node, probe, &res, false);
        if (r < 0)
                return r;
        r = node_probe_parse(res.out, res.exit_code, verdict);
        if (r < 0 && res.err && *res.err)
                cJSON_AddStringToObject(verdict, "probe_stderr", res.err);
        spawn_result_done(&res);
        return r;
}

static enum distro_family detect_family(const struct node_io *io, const char *node)
{
        _cleanup_free_ char *osr = NULL;
        if (read_remote(io, node, "/etc/os-release", &osr) < 0)
                return FAMILY_AUTO;
        return node_family_from_os_release(osr);
}

int node_setup_one(struct run_ctx *ctx, const struct node_io *io, const char *name,
                   enum distro_family family, bool setup, cJSON *verdict)
{
        int r = 0;

        if (!cJSON_GetObjectItemCaseSensitive(verdict, "node"))
                cJSON_AddStringToObject(verdict, "node", name);
        cJSON_AddBoolToObject(verdict, "ok", false);
        cJSON_AddArrayToObject(verdict, "changed");
        cJSON_AddArrayToObject(verdict, "checks");

        if (setup) {
                /* What the node says wins; the recorded or configured family
                 * only covers nodes whose /etc/os-release we do not know. */
                enum distro_family detected = detect_family(io, name);
                if (detected != FAMILY_AUTO)
                        family = detected;
                if (family == FAMILY_AUTO) {
                        r = log_error_errno(EOPNOTSUPP,
                                            "%s: unknown distribution in /etc/os-release "
                                            "(need a Debian or RHEL family node; set image.family)",
                                            name);
                        goto fail;
                }
                cJSON_AddStringToObject(verdict, "family", family_names[family]);

                /* Mesa first: the CDI spec lists the files it installed. */
                if ((r = step_mesa(ctx, io, name, family, verdict)) < 0)
                        goto fail;
                if (ctx_cancelled(ctx))
                        goto cancelled;
                if ((r = step_module(io, name, verdict)) < 0)
                        goto fail;
                if ((r = step_udev(io, name, verdict)) < 0)
                        goto fail;
                if ((r = step_cdi(io, name, verdict)) < 0)
                        goto fail;
                if (ctx_cancelled(ctx))
                        goto cancelled;
                /* The fake vGPU (provision/vgpu/): its own "vgpu" check. */
                if ((r = vgpu_node_step(ctx, io, name, family, verdict)) < 0)
                        goto fail;
                if (ctx_cancelled(ctx))
                        goto cancelled;
        }
        r = step_probe(ctx, io, name, verdict);
        if (r == -EIO)
                return r; /* probe ran and failed: the verdict says which check */
        if (r < 0)
                goto fail;
        /* A setup check (render node mode) failing fails the node too. */
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(verdict, "checks"))
        {
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
                if (cJSON_IsString(st) && streq(st->valuestring, "SKIP"))
                        continue;
                if (!json_true(c, "ok")) {
                        set_ok(verdict, false);
                        return -EIO;
                }
        }
        return 0;

cancelled:
        r = -ECANCELED;
fail:
        cJSON_AddStringToObject(verdict, "error", strerror(-r));
        return r;
}

/* ---- over libssh, one thread per node ------------------------------------ */

/* Each remote operation is a round trip into a (possibly TCG) guest: -v
 * shows what each one cost. */
static int io_run(void *u, char *const *argv, struct spawn_result *ret)
{
        double t = now_seconds();
        int r = ssh_node_run(u, argv, ret);
        log_debug("ssh: %s ... (%.2fs)", argv[0], now_seconds() - t);
        return r;
}
static int io_script(void *u, const char *script, struct spawn_result *ret)
{
        double t = now_seconds();
        int r = ssh_node_run_script(u, script, ret);
        log_debug("ssh: script of %zu bytes (%.2fs)", strlen(script), now_seconds() - t);
        return r;
}
static int io_upload_data(void *u, const void *data, size_t size, const char *remote, mode_t mode)
{
        double t = now_seconds();
        int r = ssh_node_upload_data(u, data, size, remote, mode);
        log_debug("ssh: upload %s (%.2fs)", remote, now_seconds() - t);
        return r;
}
static int io_upload(void *u, const char *local, const char *remote, mode_t mode)
{
        double t = now_seconds();
        int r = ssh_node_upload(u, local, remote, mode);
        log_debug("ssh: upload %s (%.2fs)", remote, now_seconds() - t);
        return r;
}

struct node_job {
        struct run_ctx *ctx;
        struct node_target target;
        enum distro_family family;
        bool setup;
        cJSON *verdict;
        int r;
};

static void *node_job_run(void *p)
{
        struct node_job *j = p;
        struct ssh_node *n = NULL;
        double timeout = j->ctx->cfg->ssh.timeout ? j->ctx->cfg->ssh.timeout : 300;

        cJSON_AddStringToObject(j->verdict, "node", j->target.name);
        j->r = ssh_node_connect(&j->target, timeout, &n);
        if (j->r < 0) {
                cJSON_AddBoolToObject(j->verdict, "ok", false);
                cJSON_AddArrayToObject(j->verdict, "checks");
                cJSON_AddStringToObject(j->verdict, "error", "node not reachable over ssh");
                return NULL;
        }
        struct node_io io = {
            .userdata = n,
            .run = io_run,
            .run_script = io_script,
            .upload_data = io_upload_data,
            .upload = io_upload,
        };
        j->r = node_setup_one(j->ctx, &io, j->target.name, j->family, j->setup, j->verdict);
        ssh_node_free(n);
        return NULL;
}

static enum distro_family state_node_family(const struct state *st, const char *name)
{
        const cJSON *n;
        cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(st->root, "nodes"))
        {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(n, "name");
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(n, "family");
                if (!cJSON_IsString(nm) || !streq(nm->valuestring, name) || !cJSON_IsString(f))
                        continue;
                if (streq(f->valuestring, "debian"))
                        return FAMILY_DEBIAN;
                if (streq(f->valuestring, "rhel"))
                        return FAMILY_RHEL;
        }
        return FAMILY_AUTO;
}

/* Remember which nodes passed, so cluster setup labels only those. */
static void state_mark_probe(struct state *st, const char *name, bool ok)
{
        cJSON *n;
        cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(st->root, "nodes"))
        {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(n, "name");
                if (!cJSON_IsString(nm) || !streq(nm->valuestring, name))
                        continue;
                cJSON_DeleteItemFromObjectCaseSensitive(n, "probe_ok");
                cJSON_AddBoolToObject(n, "probe_ok", ok);
        }
}

static void plan_node(struct run_ctx *ctx, const char *node, bool setup)
{
        if (setup) {
                ctx_plan(ctx,
                         "node %s: detect family from /etc/os-release; install the mesa "
                         "packages that are missing (dpkg-query/apt-get or rpm/dnf)",
                         node);
                ctx_plan(ctx, "node %s: write %s (virtio-gpu), modprobe virtio-gpu if not loaded",
                         node, NODE_MODULES_LOAD_PATH);
                ctx_plan(ctx, "node %s: write %s (renderD* MODE 0666), udevadm trigger", node,
                         NODE_UDEV_RULE_PATH);
                ctx_plan(ctx, "node %s: write CDI spec %s (kind %s, device %s)", node,
                         VGPUENV_CDI_SPEC_PATH, VGPUENV_CDI_KIND, VGPUENV_CDI_DEVICE);
                vgpu_node_plan(ctx, node);
        }
        ctx_plan(ctx, "node %s: upload %s/vgpuenv-probe to %s, run %s --json", node,
                 ctx->build_dir ? ctx->build_dir : "build", NODE_PROBE_PATH, NODE_PROBE_PATH);
}

static int run_all(struct run_ctx *ctx, struct state *st, bool setup, cJSON **ret_verdicts)
{
        _cleanup_free_ struct node_target *targets = NULL;
        size_t n = 0;
        int r = state_get_nodes(st, &targets, &n);
        if (r < 0)
                return log_error_errno(r, "cannot read the nodes from the state file");

        if (ctx->dry_run) {
                if (n == 0)
                        plan_node(ctx, "<each node>", setup);
                for (size_t i = 0; i < n; i++)
                        plan_node(ctx, targets[i].name, setup);
                *ret_verdicts = cJSON_CreateArray();
                return 0;
        }
        if (n == 0) {
                /* Provider tests run on domains without an OS and tell the
                 * provider not to wait for them (docs/providers.md). */
                const char *wait = getenv("VGPUENV_NODE_WAIT");
                if (wait && streq(wait, "0")) {
                        log_notice("VGPUENV_NODE_WAIT=0 and no node recorded: node setup skipped");
                        *ret_verdicts = cJSON_CreateArray();
                        return 0;
                }
                return log_error_errno(ENOENT, "the state lists no nodes to set up");
        }

        _cleanup_free_ struct node_job *jobs = calloc(n, sizeof(*jobs));
        _cleanup_free_ pthread_t *th = calloc(n, sizeof(*th));
        _cleanup_free_ bool *started = calloc(n, sizeof(*started));
        if (!jobs || !th || !started)
                return log_error_errno(ENOMEM, "out of memory");
        cJSON *verdicts = cJSON_CreateArray();
        struct step s =
            step_begin(setup ? "node setup and render-node probe" : "render-node probe");
        for (size_t i = 0; i < n; i++) {
                jobs[i] = (struct node_job){
                    .ctx = ctx,
                    .target = targets[i],
                    .family = state_node_family(st, targets[i].name) != FAMILY_AUTO
                                  ? state_node_family(st, targets[i].name)
                                  : (enum distro_family)ctx->cfg->image.family,
                    .setup = setup,
                    .verdict = cJSON_CreateObject(),
                };
                jobs[i].target.cancelled = &ctx->cancelled;
                cJSON_AddItemToArray(verdicts, jobs[i].verdict);
                int e = pthread_create(&th[i], NULL, node_job_run, &jobs[i]);
                if (e != 0) {
                        jobs[i].r = -e;
                        continue;
                }
                started[i] = true;
        }
        int worst = 0;
        for (size_t i = 0; i < n; i++) {
                if (started[i])
                        pthread_join(th[i], NULL);
                state_mark_probe(st, targets[i].name, jobs[i].r == 0);
                /* Unreachable or broken setup outranks a failed probe. */
                if (jobs[i].r < 0 && (worst == 0 || worst == -EIO))
                        worst = jobs[i].r;
        }
        (void)state_save(st);
        step_end(&s, worst);
        *ret_verdicts = verdicts;
        return worst;
}

int node_setup_all(struct run_ctx *ctx, struct state *st, cJSON **ret_verdicts)
{
        return run_all(ctx, st, true, ret_verdicts);
}

int node_probe_all(struct run_ctx *ctx, struct state *st, cJSON **ret_verdicts)
{
        return run_all(ctx, st, false, ret_verdicts);
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
