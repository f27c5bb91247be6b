/* mesa-injector-hook-apply: the onDefineDomain rule through libxml2, a
 * domain XML on stdin, the result on stdout (`mesa-injector hook-apply`
 * runs it). A program of its own so that the server does not carry
 * libxml2, ICU and libstdc++: 1.7 MiB of resident pages it never uses. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "webhook/config.h"
#include "webhook/domain_hook.h"
#include "webhook/program.h"

static void usage(FILE *f)
{
        fputs("usage: mesa-injector hook-apply [--config FILE] < domain.xml\n"
              "Adds the egl-headless display the hook adds, as libxml2 sees it.\n",
              f);
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
            {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {}};
        const char *config = NULL;
        int opt;

        log_set_prefix("mesa-injector");
        while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
                if (opt == 'c')
                        config = optarg;
                else
                        return program_usage_exit(opt == 'h', usage);
        }
        if (program_refuse_operands(argc, argv, usage))
                return 2;
        struct injector_config c = {};
        if (injector_config_load(&c, config, NULL) < 0)
                return 2;
        _cleanup_free_ char *in = NULL, *out = NULL;
        size_t n = 0;
        int r = read_full_file("/dev/stdin", &in, &n);
        if (r >= 0)
                r = domain_add_egl_headless(in, n, c.render_node, &out);
        int ret = 0;
        if (r < 0) {
                log_error("hook-apply: %s", r == -EINVAL
                                                ? "input is not a libvirt domain XML document"
                                                : strerror(-r));
                ret = 1;
        } else if (fputs(out, stdout) < 0)
                ret = 1;
        injector_config_done(&c);
        return ret;
}
