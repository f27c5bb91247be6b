/* Inspecting a KubeVirt checkout (see checkout.h). */
#include "e2e/checkout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/cancel.h"
#include "common/proc.h"
#include "common/util.h"

static const char *const ref_names[] = {
    [KUBEVIRT_REF_MAIN] = "main",
    [KUBEVIRT_REF_DISPLAY_SWITCH] = "vgpu-display-switch",
};

const char *kubevirt_ref_name(int ref)
{
        return ref >= 0 && ref < (int)ELEMENTSOF(ref_names) ? ref_names[ref] : "unknown";
}

int kubevirt_ref_from_name(const char *s)
{
        for (size_t i = 0; s && i < ELEMENTSOF(ref_names); i++)
                if (streq(s, ref_names[i]))
                        return (int)i;
        return -EINVAL;
}

const char *kubevirt_ref_describe(int ref)
{
        return ref == KUBEVIRT_REF_DISPLAY_SWITCH
                   ? "reads VGPU_DISPLAY: the vGPU display is on only with VGPU_DISPLAY=true"
                   : "the vGPU display is always on (display=on, ramfb=on asserted)";
}

void kubevirt_checkout_done(struct kubevirt_checkout *k)
{
        free(k->dir);
        free(k->commit);
        *k = (struct kubevirt_checkout){0};
}

/* A Makefile rule "functest:" at the start of a line. */
static bool has_functest_target(const char *makefile)
{
        _cleanup_free_ char *text = NULL;

        if (read_full_file(makefile, &text, NULL) < 0)
                return false;
        for (const char *p = text; p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (startswith(p, "functest:"))
                        return true;
        }
        return false;
}

static char *git_commit(const char *dir)
{
        _cleanup_free_ char *git = strdup_printf("%s/.git", dir);
        char *const argv[] = {"git", "-C", (char *)dir, "rev-parse", "HEAD", NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        struct cancel token;
        struct proc_opts o = {
            .argv = argv,
            .out = PROC_CAPTURE,
            .err = PROC_DISCARD,
            .log_fd = -1,
            .cancel = &token,
        };

        /* Only the checkout's own repository: a checkout inside another work
         * tree (a fixture in ours) must not report the outer commit. */
        if (!git || !file_exists(git))
                return NULL;
        cancel_init_child(&token, NULL, 30, "git rev-parse");
        if (proc_run(&o, &res) < 0 || res.exit_code != 0 || !res.out.data)
                return NULL;
        return strndup(res.out.data, strcspn(res.out.data, "\r\n"));
}

int kubevirt_checkout_inspect(const char *dir, struct kubevirt_checkout *ret)
{
        _cleanup_free_ char *mk = strdup_printf("%s/Makefile", dir);
        _cleanup_free_ char *ft = strdup_printf("%s/hack/functests.sh", dir);
        _cleanup_free_ char *test = strdup_printf("%s/" KUBEVIRT_MDEV_TEST_FILE, dir);
        _cleanup_free_ char *text = NULL;
        struct stat st;

        *ret = (struct kubevirt_checkout){0};
        if (!mk || !ft || !test)
                return log_error_errno(ENOMEM, "Out of memory");
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return log_error_errno(ENOENT, "--kubevirt %s: no such directory", dir);
        if (!has_functest_target(mk) || !file_exists(ft))
                return log_error_errno(ENOENT,
                                       "--kubevirt %s: not a KubeVirt checkout (no Makefile with "
                                       "a functest target, or no hack/functests.sh)",
                                       dir);
        if (read_full_file(test, &text, NULL) < 0)
                return log_error_errno(ENOENT,
                                       "--kubevirt %s: no %s: this KubeVirt has no MediatedDevices "
                                       "tests",
                                       dir, KUBEVIRT_MDEV_TEST_FILE);
        ret->ref = strstr(text, "VGPU_DISPLAY") ? KUBEVIRT_REF_DISPLAY_SWITCH : KUBEVIRT_REF_MAIN;
        ret->dir = realpath(dir, NULL);
        if (!ret->dir)
                return log_error_errno(errno, "Cannot resolve %s: %m", dir);
        ret->commit = git_commit(ret->dir);
        return 0;
}
