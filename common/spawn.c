/* spawn.h on top of the process runner (common/proc.c), for the callers
 * not yet moved to proc_run. */
#include "common/spawn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/proc.h"

void spawn_result_done(struct spawn_result *r)
{
        free(r->out);
        free(r->err);
        r->out = r->err = NULL;
}

int spawn_run(char *const *argv, const struct spawn_opts *opts, struct spawn_result *ret)
{
        static const struct spawn_opts defaults = {0};
        const struct spawn_opts *o = opts ? opts : &defaults;
        struct cancel_registry reg;
        struct cancel root, token;
        _cleanup_proc_result_ struct proc_result res = {0};

        *ret = (struct spawn_result){0};
        cancel_init_root(&root, &reg);
        cancel_init_child(&token, &root, o->timeout, "the time limit");
        struct proc_opts po = {
            .argv = argv,
            .env_set = o->env_set,
            .env_unset = o->env_unset,
            .cwd = o->cwd,
            .stdin_data = o->stdin_data,
            .stdin_size = o->stdin_data ? strlen(o->stdin_data) : 0,
            .out = o->capture_stdout     ? PROC_CAPTURE
                   : o->stdout_to_stderr ? PROC_TO_STDERR
                                         : PROC_INHERIT,
            .err = o->capture_stderr ? PROC_CAPTURE : PROC_INHERIT,
            .log_fd = -1,
            .cancel = &token,
        };
        /* Callers still on the old flag: it is only checked at the start. */
        if (o->cancel && atomic_load(o->cancel))
                cancel_fire(&root, ECANCELED);
        int r = proc_run(&po, &res);
        cancel_registry_done(&reg);
        if (r < 0)
                return r;
        ret->exit_code = res.exit_code;
        ret->timed_out = res.stopped_by == -ETIMEDOUT;
        ret->cancelled = res.stopped_by == -ECANCELED;
        if (o->capture_stdout)
                ret->out = buf_steal(&res.out);
        if (o->capture_stderr)
                ret->err = buf_steal(&res.err);
        return 0;
}
