/* The fake NVIDIA T4 vGPU on a node or on the Kind host (see vgpu.h).
 *
 * Where the module comes from, in order: the node already has this very
 * source installed (its digest is recorded next to the module); a build on
 * this host from the Debian packages of exactly the node's kernel (kmod.c,
 * cached); a build on the node against its own headers (the RHEL family's
 * kernel-devel), with a deadline; otherwise the row says what is missing.
 * The node script loads it with the config's display mode and replaces an
 * older one only when no instance exists, so a node in use is never
 * disturbed. */
#include "provision/vgpu/vgpu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"
#include "provision/vgpu/kmod.h"

#include "vgpu_embedded.h" /* generated: module sources and vgpu-node.sh */

#define NODE_KO VGPU_NODE_WORK "/" VGPU_MODULE ".ko"
#define NODE_SRC VGPU_NODE_WORK "/src"

static const struct kmod_file module_files[] = {
    {"vgpuenv_t4.c", vgpu_module_c},
    {"Kbuild", vgpu_module_kbuild},
    {NULL, NULL},
};

static const char *const mode_names[] = {
    [VGPU_DMABUF] = "dmabuf",
    [VGPU_REGION] = "region",
};

int vgpu_source_digest(char out[65])
{
        _cleanup_free_ char *all = NULL;
        size_t n = 0;

        for (const struct kmod_file *f = module_files; f->name; f++)
                n += strlen(f->name) + strlen(f->text) + 2;
        all = malloc(n + 1);
        if (!all)
                return -ENOMEM;
        n = 0;
        for (const struct kmod_file *f = module_files; f->name; f++)
                n += sprintf(all + n, "%s%c%s%c", f->name, 0, f->text, 0);
        return sha256_hex(all, n, out);
}

char *vgpu_kv(const char *out, const char *key)
{
        size_t klen = strlen(key);

        for (const char *l = out; l && *l;) {
                const char *eol = strchr(l, '\n');
                size_t len = eol ? (size_t)(eol - l) : strlen(l);
                if (len > klen && strncmp(l, key, klen) == 0 && l[klen] == '=')
                        return strndup(l + klen + 1, len - klen - 1);
                l = eol ? eol + 1 : NULL;
        }
        return NULL;
}

/* ---- verdict rows (the shape node_setup.c's checks have) -------------------- */

static void add_row(cJSON *verdict, bool ok, const char *status, const char *detail)
{
        cJSON *checks = cJSON_GetObjectItemCaseSensitive(verdict, "checks");
        cJSON *c = cJSON_CreateObject();

        if (!checks)
                checks = cJSON_AddArrayToObject(verdict, "checks");
        cJSON_AddStringToObject(c, "name", "vgpu");
        cJSON_AddBoolToObject(c, "ok", ok);
        cJSON_AddStringToObject(c, "detail", detail ? detail : "");
        if (status)
                cJSON_AddStringToObject(c, "status", status);
        cJSON_AddItemToArray(checks, c);
}

/* "changed=..." lines of a verb's output into the verdict's change list. */
static void record_changes(cJSON *verdict, const char *node, const char *out)
{
        cJSON *ch = cJSON_GetObjectItemCaseSensitive(verdict, "changed");

        if (!ch)
                ch = cJSON_AddArrayToObject(verdict, "changed");
        for (const char *l = out; l && *l;) {
                const char *eol = strchr(l, '\n');
                size_t len = eol ? (size_t)(eol - l) : strlen(l);
                if (startswith(l, "changed=") || startswith(l, "warning=")) {
                        _cleanup_free_ char *what = strndup(l, len);
                        char *v = what ? strchr(what, '=') + 1 : NULL;
                        if (v && startswith(l, "changed=")) {
                                cJSON_AddItemToArray(ch, cJSON_CreateString(v));
                                log_info("%s: %s", node, v);
                        } else if (v)
                                log_warning("%s: %s", node, v);
                }
                l = eol ? eol + 1 : NULL;
        }
}

/* ---- talking to the node script ---------------------------------------------- */

struct session {
        const struct node_io *io;
        const char *node;
        bool script_ready;
};

static int ensure_script(struct session *S)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        char *const cat[] = {"cat", VGPU_NODE_SCRIPT, NULL};
        int r;

        if (S->script_ready)
                return 0;
        r = S->io->run(S->io->userdata, cat, &res);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read %s", S->node, VGPU_NODE_SCRIPT);
        bool same = res.exit_code == 0 && res.out.data && streq(res.out.data, vgpu_node_script);
        proc_result_done(&res);
        if (!same) {
                char *const mk[] = {"mkdir", "-p", "/usr/local/lib/vgpuenv", VGPU_NODE_WORK, NULL};
                r = S->io->run(S->io->userdata, mk, &res);
                if (r >= 0 && res.exit_code != 0)
                        r = log_error_errno(-EIO, "%s: mkdir failed: %s", S->node,
                                            res.err.data ? res.err.data : "");
                proc_result_done(&res);
                if (r < 0)
                        return r;
                r = S->io->upload_data(S->io->userdata, vgpu_node_script, strlen(vgpu_node_script),
                                       VGPU_NODE_SCRIPT, 0755);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot upload %s", S->node,
                                               VGPU_NODE_SCRIPT);
        }
        S->script_ready = true;
        return 0;
}

static int verb_v(struct session *S, char **ret_out, const char *verb, va_list ap)
{
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        int r = ensure_script(S);

        if (r < 0)
                return r;
        if (strv_extend(&argv, "sh") < 0 || strv_extend(&argv, VGPU_NODE_SCRIPT) < 0 ||
            strv_extend(&argv, verb) < 0)
                return -ENOMEM;
        for (const char *a; (a = va_arg(ap, const char *));)
                if (strv_extend(&argv, a) < 0)
                        return -ENOMEM;
        r = S->io->run(S->io->userdata, argv, &res);
        if (r < 0) {
                proc_result_done(&res);
                return log_error_errno(r, "%s: running vgpu-node.sh %s: %m", S->node, verb);
        }
        log_debug("%s: vgpu-node.sh %s: exit %d\n%s%s", S->node, verb, res.exit_code,
                  res.out.data ? res.out.data : "", res.err.data ? res.err.data : "");
        *ret_out = strdup_printf("%s%s", res.out.data ? res.out.data : "",
                                 res.err.data ? res.err.data : "");
        r = res.exit_code;
        proc_result_done(&res);
        return *ret_out ? r : -ENOMEM;
}

static int verb(struct session *S, char **ret_out, const char *verb, ...) __attribute__((sentinel));
static int verb(struct session *S, char **ret_out, const char *verb, ...)
{
        va_list ap;
        va_start(ap, verb);
        int r = verb_v(S, ret_out, verb, ap);
        va_end(ap);
        return r;
}

int vgpu_node_verb(const struct node_io *io, const char *node, char **ret_out, const char *v, ...)
{
        struct session S = {.io = io, .node = node};
        va_list ap;
        va_start(ap, v);
        int r = verb_v(&S, ret_out, v, ap);
        va_end(ap);
        return r;
}

/* The verb's error= line, or its whole output. */
static const char *why(const char *out, char **buf)
{
        *buf = vgpu_kv(out, "error");
        return *buf ? *buf : out;
}

/* ---- getting the module onto the node ------------------------------------ */

struct facts {
        char *kernel, *pkgver, *installed_source;
        bool build_dir, compiler;
        unsigned pci_parents;
};

static void facts_done(struct facts *f)
{
        free(f->kernel);
        free(f->pkgver);
        free(f->installed_source);
}

static int read_facts(struct session *S, struct facts *f)
{
        _cleanup_free_ char *out = NULL, *bd = NULL, *cc = NULL, *pp = NULL;
        int r = verb(S, &out, "facts", NULL);

        if (r < 0)
                return r;
        f->kernel = vgpu_kv(out, "kernel");
        if (r != 0 || !f->kernel)
                return log_error_errno(-EBADMSG, "%s: vgpu-node.sh facts failed:\n%s", S->node,
                                       out);
        f->pkgver = vgpu_kv(out, "kernel-package-version");
        f->installed_source = vgpu_kv(out, "installed-source");
        bd = vgpu_kv(out, "build-dir");
        cc = vgpu_kv(out, "compiler");
        pp = vgpu_kv(out, "pci-parents");
        f->build_dir = bd && streq(bd, "yes");
        f->compiler = cc && streq(cc, "yes");
        for (char *t = pp ? strtok(pp, " ") : NULL; t; t = strtok(NULL, " "))
                f->pci_parents++;
        return 0;
}

static struct kmod_spec vgpu_spec(const struct cancel *cancel, const char *digest)
{
        return (struct kmod_spec){
            .cache_name = "vgpu",
            .module = VGPU_MODULE,
            .files = module_files,
            .key = digest,
            .hint = "the node's kernel packages must be in this host's apt sources",
            .cancel = cancel,
        };
}

/* Build on the node itself, against /lib/modules/KVER/build. */
static int build_on_node(struct session *S, char **ret_path, char **ret_err)
{
        _cleanup_free_ char *out = NULL, *e = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        char *const mk[] = {"mkdir", "-p", NODE_SRC, NULL};
        int r = S->io->run(S->io->userdata, mk, &res);

        proc_result_done(&res);
        if (r < 0)
                return r;
        for (const struct kmod_file *f = module_files; f->name; f++) {
                _cleanup_free_ char *p = strdup_printf("%s/%s", NODE_SRC, f->name);
                if (!p)
                        return -ENOMEM;
                r = S->io->upload_data(S->io->userdata, f->text, strlen(f->text), p, 0644);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot upload %s", S->node, p);
        }
        log_info("%s: building %s.ko on the node (its kernel headers)", S->node, VGPU_MODULE);
        r = verb(S, &out, "build", NODE_SRC, NULL);
        if (r < 0)
                return r;
        if (r != 0) {
                *ret_err = strdup(why(out, &e));
                log_error("%s: %s", S->node, out);
                return -EIO;
        }
        *ret_path = vgpu_kv(out, "built");
        return *ret_path ? 0 : -EBADMSG;
}

/* The module of this source installed on the node. 0, or -EIO with
 * *ret_err saying why not. */
static int install_module(struct session *S, const struct facts *f, const char *digest,
                          cJSON *verdict, char **ret_err)
{
        _cleanup_free_ char *ko = NULL, *node_ko = NULL, *out = NULL, *e = NULL;
        struct kmod_spec spec = vgpu_spec(S->io->cancel, digest);
        int r = -ENOPKG;

        if (f->installed_source && streq(f->installed_source, digest))
                return 0;
        /* A Debian kernel: the host builds it from the same packages. */
        if (f->pkgver) {
                r = kmod_build_debian(&spec, f->kernel, f->pkgver, &ko);
                if (r == -ECANCELED)
                        return r;
                if (r >= 0) {
                        r = S->io->upload(S->io->userdata, ko, NODE_KO, 0644);
                        if (r < 0)
                                return log_error_errno(r, "%s: cannot upload %s", S->node, ko);
                        node_ko = strdup(NODE_KO);
                        if (!node_ko)
                                return -ENOMEM;
                }
        }
        if (!node_ko && f->build_dir && f->compiler) {
                r = build_on_node(S, &node_ko, ret_err);
                if (r < 0)
                        return r;
        }
        if (!node_ko) {
                *ret_err = strdup_printf(
                    "cannot build %s for kernel %s: %s; the node has %s: for a RHEL-family node "
                    "install kernel-devel-%s, gcc and make (dnf install), or set vgpu: none",
                    VGPU_MODULE, f->kernel,
                    f->pkgver ? "this host could not build it from the kernel's Debian packages"
                              : "the kernel is not from a Debian package this host can fetch",
                    !f->build_dir ? "no kernel headers (/lib/modules/KVER/build)" : "no make/gcc",
                    f->kernel);
                return -EIO;
        }
        r = verb(S, &out, "install", node_ko, digest, NULL);
        if (r < 0)
                return r;
        if (r != 0) {
                *ret_err = strdup(why(out, &e));
                return -EIO;
        }
        record_changes(verdict, S->node, out);
        return 0;
}

/* ---- judging what the node offers ------------------------------------------ */

struct type_want {
        const char *id, *name;
        unsigned max;
};

static const struct type_want wanted[] = {
    {VGPU_TYPE_1B, "GRID T4-1B", 16},
    {VGPU_TYPE_2B, "GRID T4-2B", 8},
};

/* "type=PARENT|TYPE|AVAILABLE|NAME|DESCRIPTION" split in place. */
static bool split_type(char *v, char *fields[5])
{
        for (int i = 0; i < 5; i++) {
                fields[i] = v;
                char *bar = v ? strchr(v, '|') : NULL;
                if (i < 4 && !bar)
                        return false;
                if (bar) {
                        *bar = 0;
                        v = bar + 1;
                }
        }
        return true;
}

char *vgpu_first_parent(const char *check_out)
{
        _cleanup_free_ char *p = vgpu_kv(check_out, "parent");
        char *bar = p ? strchr(p, '|') : NULL;

        if (bar)
                *bar = 0;
        return p ? strdup(p) : NULL;
}

bool vgpu_judge_check(const char *out, const char *mode_name, char **ret_detail)
{
        _cleanup_free_ char *detail = strdup_printf("%s, display %s:", VGPU_MODULE, mode_name);
        unsigned parents = 0, good = 0;
        bool ok = true;

        for (const char *l = out; detail && l && *l;) {
                const char *eol = strchr(l, '\n');
                size_t len = eol ? (size_t)(eol - l) : strlen(l);
                _cleanup_free_ char *line = strndup(l, len);
                char *f[5], *add = NULL;
                l = eol ? eol + 1 : NULL;
                if (!line)
                        break;
                if (startswith(line, "parent=")) {
                        char *bar = strchr(line, '|');
                        if (bar)
                                *bar = 0;
                        parents++;
                        add = strdup_printf("%s%s %s:", detail, parents > 1 ? ";" : "", line + 7);
                } else if (startswith(line, "type=") && split_type(line + 5, f)) {
                        bool known = false;
                        for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
                                if (!streq(f[1], wanted[i].id))
                                        continue;
                                _cleanup_free_ char *mi =
                                    strdup_printf("max_instance=%u", wanted[i].max);
                                known = mi && streq(f[3], wanted[i].name) && strstr(f[4], mi) &&
                                        strstr(f[4], "num_heads=");
                                good += known;
                        }
                        ok = ok && known;
                        add = strdup_printf("%s %s \"%s\" %s available%s", detail, f[1], f[3], f[2],
                                            known ? "" : " (NOT what KubeVirt expects)");
                }
                if (add) {
                        free(detail);
                        detail = add;
                }
        }
        if (!detail)
                return false;
        if (parents == 0) {
                free(detail);
                detail = strdup_printf("%s is loaded but offers no parent under "
                                       "/sys/class/mdev_bus",
                                       VGPU_MODULE);
                ok = false;
        } else if (good != parents * ELEMENTSOF(wanted))
                ok = false;
        *ret_detail = TAKE_PTR(detail);
        return ok;
}

/* The node's own vGPU driver (vgpu: host): nothing is loaded, every parent
 * under /sys/class/mdev_bus is listed. */
static int check_host_vgpu(struct session *S, cJSON *verdict)
{
        _cleanup_free_ char *out = NULL, *e = NULL, *p = NULL, *detail = NULL;
        int r = verb(S, &out, "check", "all", NULL);

        if (r < 0)
                return r;
        p = vgpu_kv(out, "parent");
        if (r != 0 || !p) {
                add_row(verdict, false, NULL,
                        r != 0 ? why(out, &e)
                               : "vgpu: host, but no mdev parent under /sys/class/mdev_bus (is the "
                                 "vGPU manager's driver loaded?)");
                return -EIO;
        }
        (void)vgpu_judge_check(out, "of the host driver", &detail);
        add_row(verdict, true, NULL, detail);
        return 0;
}

int vgpu_apply(const struct node_io *io, const char *node, enum vgpu_mode mode, bool host,
               cJSON *verdict)
{
        struct session S = {.io = io, .node = node};
        _cleanup_free_ char *out = NULL, *err = NULL, *e = NULL, *detail = NULL, *note = NULL;
        _cleanup_(facts_done) struct facts f = {0};
        char digest[65], vparents[8];
        int r;

        if (mode != VGPU_DMABUF && mode != VGPU_REGION)
                return -EINVAL;
        r = vgpu_source_digest(digest);
        if (r < 0)
                return r;
        r = read_facts(&S, &f);
        if (r < 0)
                return r;
        r = install_module(&S, &f, digest, verdict, &err);
        if (r == -EIO) {
                add_row(verdict, false, NULL, err ? err : "the module could not be installed");
                return -EIO;
        }
        if (r < 0)
                return r;
        /* Without a PCI function to bind to (a node of another provider, a
         * Kind host), a virtual parent still serves every spec but the
         * generic one, which unbinds a PCI parent. */
        snprintf(vparents, sizeof(vparents), "%u", f.pci_parents == 0 ? 1U : 0U);
        r = verb(&S, &out, "load", mode_names[mode], vparents, NULL);
        if (r < 0)
                return r;
        record_changes(verdict, node, out);
        if (r != 0) {
                add_row(verdict, false, NULL, why(out, &e));
                return -EIO;
        }
        free(out);
        out = NULL;
        r = verb(&S, &out, "check", NULL);
        if (r < 0)
                return r;
        bool ok = r == 0 && vgpu_judge_check(out, mode_names[mode], &detail);
        if (f.pci_parents == 0 && detail)
                note = strdup_printf("%s (virtual parent: %s has no pci-testdev, so KubeVirt's "
                                     "generic-mdev spec cannot unbind a PCI parent)",
                                     detail, host ? "this host" : "the node");
        add_row(verdict, ok, NULL, note ? note : detail ? detail : out);
        return ok ? 0 : -EIO;
}

int vgpu_node_step(struct run_ctx *ctx, const struct node_io *io, const char *node,
                   enum distro_family family, cJSON *verdict)
{
        enum vgpu_mode mode = config_vgpu_mode(ctx->cfg);
        struct session S = {.io = io, .node = node};
        _cleanup_free_ char *out = NULL, *e = NULL;
        int r;

        (void)family; /* the node's facts decide how the module is built */
        if (mode == VGPU_HOST) {
                r = check_host_vgpu(&S, verdict);
                return r == -EIO ? 0 : r;
        }
        if (mode != VGPU_NONE) {
                r = vgpu_apply(io, node, mode, false, verdict);
                return r == -EIO ? 0 : r;
        }
        /* vgpu: none. A module an earlier run installed goes, unless it is
         * in use; a node that never had our script gets no write at all. */
        {
                _cleanup_proc_result_ struct proc_result res = {0};
                char *const cat[] = {"cat", VGPU_NODE_SCRIPT, NULL};
                r = io->run(io->userdata, cat, &res);
                bool ours = r >= 0 && res.exit_code == 0;
                proc_result_done(&res);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot read %s", node, VGPU_NODE_SCRIPT);
                if (!ours) {
                        add_row(verdict, true, "SKIP", "vgpu: none");
                        return 0;
                }
        }
        r = verb(&S, &out, "remove", NULL);
        if (r < 0)
                return r;
        record_changes(verdict, node, out);
        if (r != 0)
                add_row(verdict, false, NULL, why(out, &e));
        else
                add_row(verdict, true, "SKIP", "vgpu: none");
        return 0;
}

char *vgpu_node_detail(const struct config *c)
{
        enum vgpu_mode mode = config_vgpu_mode(c);

        if (mode == VGPU_NONE)
                return strdup_printf("vgpu: none: unload and uninstall %s if installed "
                                     "(sh %s remove)",
                                     VGPU_MODULE, VGPU_NODE_SCRIPT);
        if (mode == VGPU_HOST)
                return strdup_printf("vgpu: host: list the mdev parents of the node's own driver "
                                     "(sh %s check all)",
                                     VGPU_NODE_SCRIPT);
        return strdup_printf(
            "upload %s (when it differs), sh %s facts; build %s.ko for the node's kernel (this "
            "host: apt-get download of its Debian headers, make -C HEADERS M=DIR modules, "
            "cached; else on the node from its headers: sh %s build %s), sh %s install KO DIGEST "
            "(/lib/modules/KVER/updates/vgpuenv), sh %s load %s VIRTUAL-PARENTS, sh %s check: "
            "types %s and %s",
            VGPU_NODE_SCRIPT, VGPU_NODE_SCRIPT, VGPU_MODULE, VGPU_NODE_SCRIPT, NODE_SRC,
            VGPU_NODE_SCRIPT, VGPU_NODE_SCRIPT, mode_names[mode], VGPU_NODE_SCRIPT, VGPU_TYPE_1B,
            VGPU_TYPE_2B);
}

double vgpu_node_deadline(const struct config *c)
{
        /* The node's commands and, on the host, the module's build. */
        return (double)c->deadlines.node_command + c->deadlines.module_build;
}
