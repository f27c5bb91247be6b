/* Command line and stop signals of the mesa-injector programs (see
 * program.h). */
#include "webhook/program.h"

#include <getopt.h>
#include <pthread.h>

#include "common/log.h"

int program_usage_exit(bool help, void (*usage)(FILE *f))
{
        usage(help ? stdout : stderr);
        return help ? 0 : 2;
}

int program_refuse_operands(int argc, char **argv, void (*usage)(FILE *f))
{
        if (optind >= argc)
                return 0;
        log_error("unexpected argument '%s'", argv[optind]);
        usage(stderr);
        return 2;
}

void program_stop_signals(sigset_t *mask)
{
        sigemptyset(mask);
        sigaddset(mask, SIGINT);
        sigaddset(mask, SIGTERM);
}

void program_block_stop_signals(void)
{
        sigset_t mask;
        program_stop_signals(&mask);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
}
