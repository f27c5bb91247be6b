/* The images vgpuenv builds for a cluster and wires in (see cluster_images.h).
 *
 * Upstream facts the steps follow (kubevirt d923fdb8):
 *   - virt-operator takes the launcher from its own environment,
 *     VIRT_LAUNCHER_IMAGE (pkg/virt-operator/util/config.go
 *     VirtLauncherImageEnvName), renders it into virt-controller's
 *     `--launcher-image` argument (resource/generate/components/
 *     deployments.go) and into virt-handler's DaemonSet (daemonsets.go), so
 *     a change rolls out virt-operator, then virt-controller and
 *     virt-handler;
 *   - on kubevirtci, KubeVirt's own images are pushed to
 *     localhost:$(cluster-up/cli.sh ports registry) and named
 *     registry:5000/... in the cluster (kubevirtci 39bd4947 cluster-up/
 *     cluster/ephemeral-provider-common.sh), so a launcher named
 *     registry:5000/kubevirt/virt-launcher:devel is built FROM
 *     localhost:PORT/kubevirt/virt-launcher:devel on this host.
 * Tags are the built image's ID (content-addressed): an unchanged rebuild
 * pushes the same tag, and imagePullPolicy IfNotPresent stays correct. */
#include "provision/cluster_images.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/plan.h"
#include "provision/cluster_setup_internal.h"

#define WEBHOOK_REPO "vgpuenv/mesa-injector"
#define LAUNCHER_REPO "vgpuenv/virt-launcher-gl"
#define LAUNCHER_ENV "VIRT_LAUNCHER_IMAGE"

struct images_job {
        struct run_ctx *ctx;
        char *kubeconfig;
        cluster_registry_fn registry;
};

static void images_job_free(void *p)
{
        struct images_job *j = p;
        free(j->kubeconfig);
        free(j);
}

/* ---- the state's "images" object ----------------------------------------- */

static cJSON *images_obj(struct state *st)
{
        cJSON *o = cJSON_GetObjectItemCaseSensitive(st->root, "images");
        if (!cJSON_IsObject(o)) {
                cJSON_DeleteItemFromObjectCaseSensitive(st->root, "images");
                o = cJSON_AddObjectToObject(st->root, "images");
        }
        return o;
}

const char *cluster_image(const struct state *st, const char *name)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(st ? st->root : NULL, "images"), name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int record_image(struct state *st, const char *name, const char *value)
{
        cJSON *o = images_obj(st);
        if (!o)
                return log_error_errno(ENOMEM, "out of memory");
        cJSON_DeleteItemFromObjectCaseSensitive(o, name);
        if (!cJSON_AddStringToObject(o, name, value))
                return log_error_errno(ENOMEM, "out of memory");
        return state_save(st);
}

bool cluster_libraries_from_image(const struct config *c)
{
        return c->webhook.libraries == LIBRARIES_IMAGE ||
               (c->webhook.libraries == LIBRARIES_AUTO && c->kubevirt.launcher_gl);
}

/* The source tree the Containerfiles build from: above build/. */
static char *source_dir(const struct run_ctx *ctx)
{
        _cleanup_free_ char *up = strdup_printf("%s/..", ctx->build_dir);
        char *dir = up ? realpath(up, NULL) : NULL;
        _cleanup_free_ char *cf =
            dir ? strdup_printf("%s/webhook/deploy/Containerfile", dir) : NULL;
        if (cf && file_exists(cf))
                return dir;
        free(dir);
        log_error("the vgpuenv source tree (webhook/deploy/Containerfile, images/launcher/) is not "
                  "above %s: building images needs vgpuenv run from its build directory",
                  ctx->build_dir);
        return NULL;
}

/* ---- registry -------------------------------------------------------------- */

static int run_registry(struct step_run *sr, void *data)
{
        struct images_job *j = data;
        _cleanup_strv_free_ char **argv = NULL, **env = NULL;
        _cleanup_free_ char *dir = NULL, *pull = NULL, *out = NULL, *push = NULL;
        unsigned long long port;
        int r = j->registry(j->ctx, &argv, &env, &dir, &pull);

        if (r < 0)
                return r;
        step_waiting(sr, "the cluster's registry port");
        if ((r = step_run_program(sr, "the cluster's registry port", argv, env, dir, &out)) < 0)
                return r;
        char *save = NULL, *first = out ? strtok_r(out, " \r\n", &save) : NULL;
        if (parse_uint64(first ? first : "", 1, 65535, &port) < 0)
                return log_error_errno(EIO, "`%s` printed no port: %s", argv[0], out ? out : "");
        if (!(push = strdup_printf("localhost:%llu", port)))
                return log_error_errno(ENOMEM, "out of memory");
        const char *p = isempty(j->ctx->cfg->registry.pull) ? pull : j->ctx->cfg->registry.pull;
        log_info("    the cluster's registry: push to %s, the nodes pull from %s", push, p);
        if ((r = record_image(sr->st, "registry-push", push)) < 0)
                return r;
        return record_image(sr->st, "registry-pull", p);
}

/* The registry as this run resolved it (auto) or the config names it. */
static int registry_names(const struct step_run *sr, const struct config *c, const char **push,
                          const char **pull)
{
        bool autop = streq(c->registry.push, "auto");
        *push = autop ? cluster_image(sr->st, "registry-push") : c->registry.push;
        *pull = autop ? cluster_image(sr->st, "registry-pull")
                      : (isempty(c->registry.pull) ? c->registry.push : c->registry.pull);
        if (!*push || !*pull)
                return log_error_errno(EINVAL, "the registry step has not run");
        return 0;
}

static void add_registry_step(struct plan *p, struct images_job *j)
{
        _cleanup_strv_free_ char **argv = NULL, **env = NULL;
        _cleanup_free_ char *dir = NULL, *pull = NULL, *cmd = NULL;
        if (j->registry(j->ctx, &argv, &env, &dir, &pull) < 0)
                return;
        cmd = shell_join(argv);
        struct step *s = plan_add(p, "registry", run_registry, j);
        step_acts_on(s, "the cluster's image registry (read only)");
        step_progress(s, "asking the provider for its registry's port");
        step_deadline(s, j->ctx->cfg->deadlines.kubectl);
        step_detail(s, "run: [in %s] %s   (push to localhost:PORT; the nodes pull from %s)", dir,
                    cmd ? cmd : "", pull);
        step_undo(s, NULL, "nothing: it only reads");
}

/* ---- podman build and push ------------------------------------------------ */

/* podman build of CONTAINERFILE (relative to the source tree) with the
 * build args; *ret_id gets the image ID (sha256:...). */
static int podman_build(struct step_run *sr, const struct run_ctx *ctx, const char *what,
                        const char *containerfile, const char *local_tag, char *const *build_args,
                        char **ret_id)
{
        _cleanup_free_ char *src = source_dir(ctx);
        _cleanup_free_ char *iid = strdup_printf("%s/%s.iid", ctx->state_dir, local_tag);
        _cleanup_free_ char *cf = src ? strdup_printf("%s/%s", src, containerfile) : NULL;
        _cleanup_free_ char *tag = strdup_printf("localhost/%s:latest", local_tag);
        _cleanup_strv_free_ char **argv = NULL;
        const struct config *c = ctx->cfg;
        int r = 0;

        if (!src)
                return -ENOENT;
        if (!iid || !cf || !tag)
                return log_error_errno(ENOMEM, "out of memory");
        (void)!strv_extend(&argv, "podman");
        (void)!strv_extend(&argv, "build");
        (void)!strv_extend(&argv,
                           c->registry.tls_verify ? "--tls-verify=true" : "--tls-verify=false");
        (void)!strv_push(&argv, strdup_printf("--iidfile=%s", iid));
        for (size_t i = 0; build_args && build_args[i]; i++) {
                (void)!strv_extend(&argv, "--build-arg");
                (void)!strv_extend(&argv, build_args[i]);
        }
        (void)!strv_extend(&argv, "-f");
        (void)!strv_extend(&argv, cf);
        (void)!strv_extend(&argv, "-t");
        (void)!strv_extend(&argv, tag);
        if (strv_extend(&argv, src) < 0)
                return log_error_errno(ENOMEM, "out of memory");
        unlink(iid);
        step_waiting(sr, "%s", what);
        if ((r = step_run_program_checked(sr, c->deadlines.image_build, what, argv, NULL, src,
                                          NULL)) < 0)
                return r;
        _cleanup_free_ char *id = NULL;
        if ((r = read_full_file(iid, &id, NULL)) < 0 || !startswith(id, "sha256:") ||
            strlen(id) < strlen("sha256:") + 12)
                return log_error_errno(r < 0 ? r : EIO, "podman build wrote no image ID to %s",
                                       iid);
        id[strcspn(id, " \r\n")] = '\0';
        *ret_id = TAKE_PTR(id);
        return 0;
}

/* Push image ID as PUSH/REPO:TAG (TAG: 12 hex of the ID); *ret_pull gets
 * PULL/REPO:TAG. */
static int podman_push(struct step_run *sr, const struct config *c, const char *id,
                       const char *repo, char **ret_pull)
{
        const char *push, *pull;
        int r = registry_names(sr, c, &push, &pull);
        if (r < 0)
                return r;
        char tag[13];
        snprintf(tag, sizeof(tag), "%.12s", id + strlen("sha256:"));
        _cleanup_free_ char *dst = strdup_printf("docker://%s/%s:%s", push, repo, tag);
        _cleanup_free_ char *out = strdup_printf("%s/%s:%s", pull, repo, tag);
        if (!dst || !out)
                return log_error_errno(ENOMEM, "out of memory");
        char *const argv[] = {
            "podman",   "push", c->registry.tls_verify ? "--tls-verify=true" : "--tls-verify=false",
            (char *)id, dst,    NULL};
        step_waiting(sr, "podman push to %s", dst);
        if ((r = step_run_program_checked(sr, c->deadlines.image_build, "podman push", argv, NULL,
                                          NULL, NULL)) < 0)
                return r;
        log_info("    pushed %s (the nodes pull %s)", dst, out);
        *ret_pull = TAKE_PTR(out);
        return 0;
}

/* ---- mesa-injector's image -------------------------------------------------- */

static int run_webhook_image(struct step_run *sr, void *data)
{
        struct images_job *j = data;
        _cleanup_free_ char *id = NULL, *ref = NULL;
        int r = podman_build(sr, j->ctx, "podman build of mesa-injector's image",
                             "webhook/deploy/Containerfile", "vgpuenv-mesa-injector", NULL, &id);
        if (r < 0 || (r = podman_push(sr, j->ctx->cfg, id, WEBHOOK_REPO, &ref)) < 0)
                return r;
        return record_image(sr->st, "mesa-injector", ref);
}

static const char *tls(const struct config *c)
{
        return c->registry.tls_verify ? "true" : "false";
}

/* The registry's names as the plan shows them (auto: localhost:PORT). */
static void plan_names(const struct images_job *j, char **push, char **pull)
{
        const struct config *c = j->ctx->cfg;
        _cleanup_strv_free_ char **argv = NULL, **env = NULL;
        _cleanup_free_ char *dir = NULL, *apull = NULL;
        bool autop = streq(c->registry.push, "auto");
        if (autop && j->registry)
                (void)j->registry(j->ctx, &argv, &env, &dir, &apull);
        *push = strdup(autop ? "localhost:PORT" : c->registry.push);
        *pull = strdup(!isempty(c->registry.pull) ? c->registry.pull
                       : autop                    ? (apull ? apull : "?")
                                                  : c->registry.push);
}

static bool needs_registry_step(const struct config *c)
{
        return (c->webhook.build_image || c->kubevirt.launcher_gl) &&
               streq(c->registry.push, "auto");
}

int cluster_images_plan_webhook(struct plan *p, struct run_ctx *ctx, cluster_registry_fn registry)
{
        const struct config *c = ctx->cfg;
        if (!c->webhook.build_image && !c->kubevirt.launcher_gl)
                return 0;
        struct images_job *j = plan_own(p, calloc(1, sizeof(*j)), images_job_free);
        if (!j)
                return log_error_errno(ENOMEM, "out of memory");
        *j = (struct images_job){.ctx = ctx, .registry = registry};
        if (needs_registry_step(c)) {
                if (!registry)
                        return log_error_errno(EINVAL,
                                               "%s: registry.push is auto, but this provider has "
                                               "no registry of its own: name one (HOST:PORT)",
                                               c->path);
                add_registry_step(p, j);
        }
        if (!c->webhook.build_image)
                return plan_error(p);
        _cleanup_free_ char *push = NULL, *pull = NULL;
        plan_names(j, &push, &pull);
        struct step *s = plan_add(p, "webhook-image", run_webhook_image, j);
        step_acts_on(s, "the registry %s (%s)", push ? push : "", WEBHOOK_REPO);
        step_progress(s, "building mesa-injector's image with podman and pushing it");
        step_deadline(s, 2.0 * c->deadlines.image_build);
        step_detail(
            s,
            "run: [in SRC] podman build --tls-verify=%s --iidfile=%s/vgpuenv-mesa-injector.iid "
            "-f SRC/webhook/deploy/Containerfile -t localhost/vgpuenv-mesa-injector:latest "
            "SRC\nrun: podman push --tls-verify=%s IMAGE-ID docker://%s/%s:ID12\n   (SRC: "
            "the source tree above %s; the manifests then name %s/%s:ID12)",
            tls(c), ctx->state_dir, tls(c), push ? push : "", WEBHOOK_REPO, ctx->build_dir,
            pull ? pull : "", WEBHOOK_REPO);
        step_undo(s, NULL, "nothing: the image stays in the cluster's registry, gone with it");
        return plan_error(p);
}

/* ---- the GL launcher -------------------------------------------------------- */

static const cJSON *path_get(const cJSON *o, const char *const *path)
{
        for (size_t i = 0; o && path[i]; i++)
                o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
        return o;
}

char *cluster_launcher_image_of(const char *deployment_json)
{
        cJSON *d = deployment_json ? cJSON_Parse(deployment_json) : NULL;
        const cJSON *containers =
            path_get(d, (const char *const[]){"spec", "template", "spec", "containers", NULL});
        const cJSON *c, *a;
        char *found = NULL;
        cJSON_ArrayForEach(c, containers)
        {
                bool next = false;
                cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(c, "args"))
                {
                        if (!cJSON_IsString(a))
                                continue;
                        if (next && !found)
                                found = strdup(a->valuestring);
                        next = streq(a->valuestring, "--launcher-image");
                        if (startswith(a->valuestring, "--launcher-image=") && !found)
                                found = strdup(a->valuestring + strlen("--launcher-image="));
                }
        }
        cJSON_Delete(d);
        return found;
}

/* `kubectl get KIND NAME -n NS -o json` into *ret; *absent for NotFound. */
static int get_json(struct step_run *sr, const struct images_job *j, const char *kind,
                    const char *name, char **ret, bool *absent)
{
        const struct config *c = j->ctx->cfg;
        const char *get[] = {"get", kind, name, "-n", c->kubevirt.namespace, "-o", "json", NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        _cleanup_free_ char *what = strdup_printf("kubectl get %s %s", kind, name);
        int r = cluster_kubectl(sr, c, j->kubeconfig, what ? what : "kubectl get", get, &res);
        *ret = NULL;
        *absent = false;
        if (r < 0)
                return r;
        if (res.exit_code != 0) {
                const char *err = res.err.data ? res.err.data : "";
                if (strstr(err, "NotFound") || strstr(err, "not found")) {
                        *absent = true;
                        return 0;
                }
                return log_error_errno(EIO, "kubectl get %s %s -n %s failed: %s", kind, name,
                                       c->kubevirt.namespace, err);
        }
        *ret = strdup(res.out.data ? res.out.data : "");
        return *ret ? 0 : log_error_errno(ENOMEM, "out of memory");
}

/* The stock launcher to build from, as this host pulls it; NULL (and a
 * notice) when KubeVirt is not deployed yet (kubevirtci before
 * cluster-sync). */
static int launcher_base(struct step_run *sr, const struct images_job *j, char **ret)
{
        const struct config *c = j->ctx->cfg;
        _cleanup_free_ char *json = NULL, *running = NULL;
        const char *push, *pull;
        bool absent;
        int r;

        *ret = NULL;
        if (!isempty(c->kubevirt.launcher_base))
                return (*ret = strdup(c->kubevirt.launcher_base)) ? 0 : -ENOMEM;
        if ((r = get_json(sr, j, "deployment", "virt-controller", &json, &absent)) < 0)
                return r;
        if (absent) {
                log_notice("KubeVirt is not deployed in namespace %s yet: the GL launcher is built "
                           "by running `vgpuenv up` again after KubeVirt is installed (e.g. make "
                           "cluster-sync)",
                           c->kubevirt.namespace);
                return 0;
        }
        if (!(running = cluster_launcher_image_of(json)))
                return log_error_errno(EIO, "virt-controller has no --launcher-image argument");
        /* Our own image already (a second up): build from what it was made of. */
        const char *ours = cluster_image(sr->st, "virt-launcher");
        const char *was = cluster_image(sr->st, "virt-launcher-base");
        _cleanup_free_ char *base = strdup(ours && was && streq(running, ours) ? was : running);
        if (!base || (r = registry_names(sr, c, &push, &pull)) < 0)
                return base ? r : -ENOMEM;
        size_t n = strlen(pull);
        *ret = strncmp(base, pull, n) == 0 && base[n] == '/' ? strdup_printf("%s%s", push, base + n)
                                                             : strdup(base);
        return *ret ? record_image(sr->st, "virt-launcher-base", base) : -ENOMEM;
}

static int run_launcher_image(struct step_run *sr, void *data)
{
        struct images_job *j = data;
        const struct config *c = j->ctx->cfg;
        _cleanup_free_ char *base = NULL, *id = NULL, *ref = NULL, *a1 = NULL, *a2 = NULL;
        int r = launcher_base(sr, j, &base);
        if (r < 0 || !base)
                return r;
        a1 = strdup_printf("LAUNCHER_IMAGE=%s", base);
        a2 = strdup_printf("GL_BUILDER_IMAGE=%s", c->kubevirt.launcher_builder);
        char *const args[] = {a1, a2, NULL};
        if (!a1 || !a2)
                return log_error_errno(ENOMEM, "out of memory");
        r = podman_build(sr, j->ctx, "podman build of the GL launcher",
                         "images/launcher/Containerfile", "vgpuenv-virt-launcher-gl", args, &id);
        if (r < 0 || (r = podman_push(sr, c, id, LAUNCHER_REPO, &ref)) < 0)
                return r;
        return record_image(sr->st, "virt-launcher", ref);
}

/* The value of VIRT_LAUNCHER_IMAGE in virt-operator's Deployment, "" when
 * it has none. */
static char *operator_env(const char *deployment_json)
{
        cJSON *d = cJSON_Parse(deployment_json);
        const cJSON *containers =
            path_get(d, (const char *const[]){"spec", "template", "spec", "containers", NULL});
        const cJSON *c, *e;
        char *v = NULL;
        cJSON_ArrayForEach(c, containers)
            cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "env"))
        {
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
                const cJSON *val = cJSON_GetObjectItemCaseSensitive(e, "value");
                if (!v && cJSON_IsString(n) && streq(n->valuestring, LAUNCHER_ENV))
                        v = strdup(cJSON_IsString(val) ? val->valuestring : "");
        }
        cJSON_Delete(d);
        return v ? v : strdup("");
}

/* Until virt-controller's --launcher-image is img (virt-operator renders
 * it once its new pod runs), polled every 5 s within the step's deadline. */
static int wait_controller(struct step_run *sr, const struct images_job *j, const char *img)
{
        step_waiting(sr, "virt-operator to render virt-controller with --launcher-image %s", img);
        for (;;) {
                _cleanup_free_ char *json = NULL, *now = NULL;
                bool absent;
                int r = get_json(sr, j, "deployment", "virt-controller", &json, &absent);
                if (r < 0)
                        return r;
                if (json && (now = cluster_launcher_image_of(json)) && streq(now, img))
                        return 0;
                if ((r = cancel_sleep(&sr->cancel, 5)) < 0)
                        return r;
        }
}

static int rollout(struct step_run *sr, const struct images_job *j, const char *what)
{
        const struct config *c = j->ctx->cfg;
        _cleanup_free_ char *t = strdup_printf("--timeout=%us", c->deadlines.rollout);
        const char *a[] = {"rollout", "status", what, "-n", c->kubevirt.namespace, t, NULL};
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *label = strdup_printf("kubectl rollout status %s", what);
        if (!t || !label)
                return log_error_errno(ENOMEM, "out of memory");
        step_waiting(sr, "%s", label);
        /* Its own deadline: rollouts take longer than other kubectl calls. */
        if (strv_extend(&argv, c->kubevirt.kubectl) < 0 || strv_extend(&argv, "--kubeconfig") < 0 ||
            strv_extend(&argv, j->kubeconfig) < 0)
                return log_error_errno(ENOMEM, "out of memory");
        for (size_t i = 0; a[i]; i++)
                if (strv_extend(&argv, a[i]) < 0)
                        return log_error_errno(ENOMEM, "out of memory");
        return step_run_program_checked(sr, c->deadlines.rollout + 30.0, label, argv, NULL, NULL,
                                        NULL);
}

static int set_operator_env(struct step_run *sr, const struct images_job *j, const char *value)
{
        const struct config *c = j->ctx->cfg;
        _cleanup_free_ char *kv =
            *value ? strdup_printf(LAUNCHER_ENV "=%s", value) : strdup(LAUNCHER_ENV "-");
        const char *a[] = {"set", "env", "deployment/virt-operator", "-n", c->kubevirt.namespace,
                           kv,    NULL};
        return kv ? cluster_kubectl(sr, c, j->kubeconfig,
                                    "kubectl set env deployment/virt-operator", a, NULL)
                  : -ENOMEM;
}

static int run_set_launcher(struct step_run *sr, void *data)
{
        struct images_job *j = data;
        const char *img = cluster_image(sr->st, "virt-launcher");
        _cleanup_free_ char *json = NULL, *before = NULL;
        bool absent;
        int r;

        if (!img || !cluster_image(sr->st, "virt-launcher-base"))
                return 0; /* launcher-image skipped: KubeVirt is not there yet */
        if ((r = get_json(sr, j, "deployment", "virt-operator", &json, &absent)) < 0)
                return r;
        if (absent)
                return log_error_errno(ENOENT, "virt-operator is not deployed in namespace %s",
                                       j->ctx->cfg->kubevirt.namespace);
        if (!(before = operator_env(json)))
                return log_error_errno(ENOMEM, "out of memory");
        if (!streq(before, img)) {
                /* What to give back on undo: the value before the first run
                 * that changed it. */
                if (!cluster_image(sr->st, "virt-operator-env-before") &&
                    (r = record_image(sr->st, "virt-operator-env-before", before)) < 0)
                        return r;
                /* Recorded as this run's change (an earlier run's record
                 * would keep its own run id), so the undo gives it back. */
                if ((r = set_operator_env(sr, j, img)) < 0 ||
                    (r = state_drop_resource(sr->st, "virt-operator-env", LAUNCHER_ENV)) < 0 ||
                    (r = state_add_resource(sr->st, "virt-operator-env", LAUNCHER_ENV)) < 0)
                        return r;
                log_info("    virt-operator: " LAUNCHER_ENV "=%s (was %s)", img,
                         *before ? before : "unset");
        }
        if ((r = rollout(sr, j, "deployment/virt-operator")) < 0 ||
            (r = wait_controller(sr, j, img)) < 0 ||
            (r = rollout(sr, j, "deployment/virt-controller")) < 0 ||
            (r = rollout(sr, j, "daemonset/virt-handler")) < 0)
                return r;
        log_info("    virt-controller and virt-handler run with %s", img);
        return 0;
}

static int undo_set_launcher(struct step_run *sr, void *data)
{
        struct images_job *j = data;
        if (!state_resource_is_ours_this_run(sr->st, "virt-operator-env", LAUNCHER_ENV))
                return 0;
        const char *before = cluster_image(sr->st, "virt-operator-env-before");
        int r = set_operator_env(sr, j, before ? before : "");
        if (r >= 0)
                r = state_drop_resource(sr->st, "virt-operator-env", LAUNCHER_ENV);
        return r;
}

static void detail_launcher(struct step *build, struct step *set, const struct images_job *j)
{
        const struct config *c = j->ctx->cfg;
        const char *ns = c->kubevirt.namespace;
        _cleanup_free_ char *push = NULL, *pull = NULL,
                            *t = strdup_printf("--timeout=%us", c->deadlines.rollout);
        plan_names(j, &push, &pull);
        const char *get[] = {"get", "deployment", "virt-controller", "-n", ns, "-o", "json", NULL};
        const char *env[] = {"set",
                             "env",
                             "deployment/virt-operator",
                             "-n",
                             ns,
                             LAUNCHER_ENV "="
                                          "IMAGE",
                             NULL};
        const char *ro[] = {"rollout",  "status", "deployment/virt-operator", "-n", ns,
                            t ? t : "", NULL};
        _cleanup_free_ char *g = cluster_kubectl_text(c, j->kubeconfig, get),
                            *e = cluster_kubectl_text(c, j->kubeconfig, env),
                            *r = cluster_kubectl_text(c, j->kubeconfig, ro);
        step_detail(
            build,
            "run: %s   (its --launcher-image, unless kubevirt.launcher_base names one; a "
            "%s/ name is pulled here as %s/)\nrun: [in SRC] podman build --tls-verify=%s "
            "--iidfile=%s/vgpuenv-virt-launcher-gl.iid --build-arg LAUNCHER_IMAGE=BASE "
            "--build-arg GL_BUILDER_IMAGE=%s -f SRC/images/launcher/Containerfile -t "
            "localhost/vgpuenv-virt-launcher-gl:latest SRC\nrun: podman push --tls-verify=%s "
            "IMAGE-ID docker://%s/%s:ID12   (IMAGE: %s/%s:ID12)",
            g ? g : "", pull ? pull : "", push ? push : "", tls(c), j->ctx->state_dir,
            c->kubevirt.launcher_builder, tls(c), push ? push : "", LAUNCHER_REPO, pull ? pull : "",
            LAUNCHER_REPO);
        step_detail(set,
                    "run: %s\nrun: %s\n   then every 5 s: kubectl get deployment virt-controller "
                    "until its --launcher-image is IMAGE\nrun: kubectl rollout status "
                    "deployment/virt-controller, then daemonset/virt-handler (same options)",
                    e ? e : "", r ? r : "");
}

int cluster_images_plan_launcher(struct plan *p, struct run_ctx *ctx, const char *kubeconfig,
                                 cluster_registry_fn registry)
{
        const struct config *c = ctx->cfg;
        if (!c->kubevirt.launcher_gl)
                return 0;
        struct images_job *j = plan_own(p, calloc(1, sizeof(*j)), images_job_free);
        if (!j || !(j->kubeconfig = strdup(kubeconfig)))
                return log_error_errno(ENOMEM, "out of memory");
        j->ctx = ctx;
        j->registry = registry;
        struct step *b = plan_add(p, "launcher-image", run_launcher_image, j);
        step_acts_on(b, "the registry (%s)", LAUNCHER_REPO);
        step_progress(b, "building virt-launcher with QEMU's egl-headless display and pushing it");
        step_deadline(b, 2.0 * c->deadlines.image_build + c->deadlines.kubectl);
        step_undo(b, NULL, "nothing: the image stays in the cluster's registry, gone with it");
        struct step *s = plan_add(p, "virt-launcher-image", run_set_launcher, j);
        step_acts_on(s, "deployment virt-operator in %s (" LAUNCHER_ENV ")", c->kubevirt.namespace);
        step_progress(s, "virt-operator's " LAUNCHER_ENV " to the GL launcher, then the rollouts");
        step_deadline(s, 4.0 * (c->deadlines.rollout + 30.0) + 2.0 * c->deadlines.kubectl);
        step_undo(s, undo_set_launcher,
                  "give virt-operator back its " LAUNCHER_ENV " when this run changed it");
        detail_launcher(b, s, j);
        return plan_error(p);
}
