/* What the four mesa-injector programs (main.c, hook_apply.c,
 * device_plugin_main.c, hook_sidecar_main.c) do alike on their command
 * line and with the signals that stop them. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

/* An option the program's getopt loop did not take: --help prints usage
 * to stdout (exit 0), anything else to stderr (exit 2). Returns the exit
 * code. */
int program_usage_exit(bool help, void (*usage)(FILE *f));
/* Operands after the options: logged with usage, 2; none: 0. */
int program_refuse_operands(int argc, char **argv, void (*usage)(FILE *f));
/* *mask becomes SIGINT and SIGTERM, the signals that stop our servers. */
void program_stop_signals(sigset_t *mask);
/* Blocks them in this thread and every thread it starts later (gRPC's and
 * libmicrohttpd's too), so that only a signalfd or sigwait() takes them. */
void program_block_stop_signals(void);
