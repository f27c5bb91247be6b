/* Node setup as plan steps (see node_setup.h): for each node, in its lane,
 * a connect step, one step per node_step_defs entry over that connection,
 * and at the end one step that prints the verdict table and stops the plan
 * when a probe failed (the nodes stay up for inspection: no rollback). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/plan.h"
#include "provision/base/ssh.h"
#include "provision/node_setup.h"
#include "provision/node_setup_internal.h"

struct node_verdicts {
        cJSON *array; /* one verdict per node, in plan order */
        bool print;   /* the table on stdout when the plan reaches it */
        bool halt;    /* a failed probe stops the plan */
};

struct node_session {
        struct run_ctx *ctx;
        char *name;
        cJSON *verdict; /* in verdicts->array */
        struct ssh_node *ssh;
        enum distro_family family;
};

struct node_job {
        struct node_session *s;
        const struct node_step_def *def;
};

static void verdicts_free(void *p)
{
        struct node_verdicts *v = p;
        cJSON_Delete(v->array);
        free(v);
}

static void session_free(void *p)
{
        struct node_session *s = p;
        ssh_node_free(s->ssh);
        free(s->name);
        free(s);
}

/* Each remote operation is a round trip into a (possibly TCG) guest: -v
 * shows what each one cost. */
static int io_run(void *u, char *const *argv, struct proc_result *ret)
{
        double t = now_seconds();
        int r = ssh_node_run(u, argv, ret);
        log_debug("ssh: %s ... (%.2fs)", argv[0], now_seconds() - t);
        return r;
}

static int io_script(void *u, const char *script, struct proc_result *ret)
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

static struct node_io session_io(struct node_session *s)
{
        return (struct node_io){
            .userdata = s->ssh,
            .run = io_run,
            .run_script = io_script,
            .upload_data = io_upload_data,
            .upload = io_upload,
        };
}

static enum distro_family recorded_family(const struct state *st, const char *name)
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

static int run_connect(struct step_run *sr, void *data)
{
        struct node_session *s = data;
        _cleanup_free_ struct node_target *targets = NULL;
        const struct node_target *t = NULL;
        size_t n = 0;
        int r = state_get_nodes(sr->st, &targets, &n);

        if (r < 0)
                return log_error_errno(r, "cannot read the nodes from the state file");
        for (size_t i = 0; i < n && !t; i++)
                if (streq(targets[i].name, s->name))
                        t = &targets[i];
        if (!t)
                return log_error_errno(ENOENT,
                                       "%s: not in the state: the provider's steps "
                                       "recorded no such node",
                                       s->name);
        struct node_target tt = *t;
        tt.cancel = &sr->cancel;
        step_waiting(sr, "sshd on %s (%s:%u)", tt.name, tt.host, tt.port ? tt.port : 22);
        ssh_node_free(s->ssh);
        s->ssh = NULL;
        r = ssh_node_connect(&tt, s->ctx->cfg->ssh.timeout, &s->ssh);
        if (r < 0) {
                cJSON_AddStringToObject(s->verdict, "error", "node not reachable over ssh");
                return r;
        }
        enum distro_family rec = recorded_family(sr->st, s->name);
        s->family = rec != FAMILY_AUTO ? rec : (enum distro_family)s->ctx->cfg->image.family;
        ssh_node_set_cancel(s->ssh, &sr->cancel);
        struct node_io io = session_io(s);
        s->family = node_detect_family(&io, s->name, s->family);
        return 0;
}

static int run_node_step(struct step_run *sr, void *data)
{
        struct node_job *j = data;
        struct node_session *s = j->s;
        int r;

        if (!s->ssh)
                return log_error_errno(ENOTCONN, "%s: not connected", s->name);
        if (j->def->setup_only && s->family == FAMILY_AUTO)
                return log_error_errno(EOPNOTSUPP,
                                       "%s: unknown distribution in /etc/os-release (need a "
                                       "Debian or RHEL family node; set image.family)",
                                       s->name);
        if (j->def->setup_only && !cJSON_GetObjectItemCaseSensitive(s->verdict, "family"))
                cJSON_AddStringToObject(s->verdict, "family", family_names[s->family]);
        /* Every command of the step runs under the step's deadline. */
        ssh_node_set_cancel(s->ssh, &sr->cancel);
        step_waiting(sr, "%s on %s", j->def->name, s->name);
        struct node_io io = session_io(s);
        io.cancel = &sr->cancel;
        r = j->def->run(s->ctx, &io, s->name, s->family, s->verdict);
        if (r < 0)
                node_verdict_error(s->verdict, r);
        return r;
}

/* Which nodes passed, so cluster setup labels only those. */
static void mark_probes(struct state *st, const cJSON *verdicts)
{
        const cJSON *v, *n;
        cJSON_ArrayForEach(v, verdicts)
        {
                const cJSON *vn = cJSON_GetObjectItemCaseSensitive(v, "node");
                bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "ok"));
                cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(st->root, "nodes"))
                {
                        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(n, "name");
                        if (!cJSON_IsString(vn) || !cJSON_IsString(nm) ||
                            !streq(nm->valuestring, vn->valuestring))
                                continue;
                        cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)n, "probe_ok");
                        cJSON_AddBoolToObject((cJSON *)n, "probe_ok", ok);
                }
        }
        (void)state_save(st);
}

static int run_verdicts(struct step_run *sr, void *data)
{
        struct node_verdicts *v = data;
        _cleanup_strv_free_ char **failed = NULL;
        const cJSON *it;

        mark_probes(sr->st, v->array);
        cJSON_ArrayForEach(it, v->array)
        {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "node");
                if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "ok")) &&
                    strv_extend(&failed, cJSON_IsString(name) ? name->valuestring : "?") < 0)
                        return log_error_errno(ENOMEM, "out of memory");
        }
        if (v->print) {
                printf("\nnode verdicts:\n");
                node_verdicts_print(v->array, stdout);
                fflush(stdout);
        }
        if (!failed)
                return 0;
        _cleanup_free_ char *list = strv_join(failed, ", ");
        log_error("the render-node probe failed on %s (see the table above)%s", list ? list : "?",
                  v->halt ? "; the nodes stay up for inspection" : "");
        return v->halt ? STEP_HALT : 0;
}

static int plan_one_node(struct plan *p, struct run_ctx *ctx, struct node_verdicts *vs,
                         const char *name, unsigned lane, bool setup, const char *skip)
{
        struct node_session *s = plan_own(p, calloc(1, sizeof(*s)), session_free);
        _cleanup_free_ char *sn = strdup_printf("connect %s", name);
        struct step *st;

        if (!s || !sn || !(s->name = strdup(name)) || !(s->verdict = cJSON_CreateObject()))
                return log_error_errno(ENOMEM, "out of memory");
        s->ctx = ctx;
        node_verdict_init(s->verdict, name);
        cJSON_AddItemToArray(vs->array, s->verdict);
        st = plan_add(p, sn, run_connect, s);
        step_lane(st, lane, name);
        step_acts_on(st, "node %s over ssh (address and host key from the state)", name);
        step_progress(st, "connecting to %s", name);
        step_deadline(st, ctx->cfg->ssh.timeout + 30.0);
        if (skip)
                step_skip(st, skip);
        for (const struct node_step_def *d = node_step_defs; d->name; d++) {
                if (d->setup_only && !setup)
                        continue;
                struct node_job *j = plan_own(p, calloc(1, sizeof(*j)), free);
                _cleanup_free_ char *n = strdup_printf("%s %s", d->name, name);
                if (!j || !n)
                        return log_error_errno(ENOMEM, "out of memory");
                *j = (struct node_job){.s = s, .def = d};
                st = plan_add(p, n, run_node_step, j);
                step_lane(st, lane, name);
                step_acts_on(st, "node %s", name);
                step_progress(st, "%s", d->progress);
                step_deadline(st, d->deadline ? d->deadline(ctx->cfg)
                                              : ctx->cfg->deadlines.node_command);
                step_undo(st, NULL,
                          "nothing: node setup converges, and the node's own undo "
                          "removes the node");
                if (d->detail) {
                        _cleanup_free_ char *text = d->detail(ctx->cfg);
                        if (!text)
                                return log_error_errno(ENOMEM, "out of memory");
                        step_detail(st, "%s", text);
                }
                if (skip)
                        step_skip(st, skip);
        }
        return 0;
}

int node_setup_plan(struct plan *p, struct run_ctx *ctx, char *const *names, bool setup,
                    bool halt_on_failure, cJSON **ret_verdicts)
{
        struct node_verdicts *vs = plan_own(p, calloc(1, sizeof(*vs)), verdicts_free);
        const char *wait = getenv("VGPUENV_NODE_WAIT");
        /* Provider tests run on domains without an OS (docs/providers.md). */
        const char *skip = wait && streq(wait, "0") ? "VGPUENV_NODE_WAIT=0 (test nodes never "
                                                      "boot)"
                                                    : NULL;
        struct step *st;
        int r;

        if (!vs || !(vs->array = cJSON_CreateArray()))
                return log_error_errno(ENOMEM, "out of memory");
        vs->print = !ctx->json;
        vs->halt = halt_on_failure;
        for (size_t i = 0; names && names[i]; i++)
                if ((r = plan_one_node(p, ctx, vs, names[i], (unsigned)i + 1, setup, skip)) < 0)
                        return r;
        st = plan_add(p, "verdicts", run_verdicts, vs);
        step_acts_on(st, "the state (which nodes passed the render-node probe)");
        step_progress(st, "render-node verdicts of %zu node(s)", strv_length(names));
        step_deadline(st, 30);
        if (skip)
                step_skip(st, skip);
        if (ret_verdicts)
                *ret_verdicts = vs->array;
        return plan_error(p);
}
