/* The vgpuenv subcommands, git-style: one cmd_*.c per subcommand, each with
 * its own usage text, dispatched by cli/main.c from the table in main.c.
 *
 * A command gets argv starting at its own name (argv[0] == "up"), parses its
 * options with getopt_long, and returns the process exit code:
 * 0 ok, 1 failure, 2 bad usage or bad config. */
#pragma once

#include <stdio.h>

struct cli_session_command;

/* A command either parses argv itself (run) or has the shape most share
 * (session: cli.h's cli_session_command, run by the dispatcher). */
struct cli_command {
        const char *name;
        const char *summary;
        int (*run)(int argc, char **argv);
        const struct cli_session_command *session;
};

extern const struct cli_session_command cli_up, cli_down, cli_status, cli_probe;
int cmd_ssh(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_e2e(int argc, char **argv);
int cmd_verify_display(int argc, char **argv);
int cmd_vgpu(int argc, char **argv);
int cmd_config(int argc, char **argv);

/* Exit codes. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Shared option handling: -c/--config FILE (default configs/local.yaml,
 * or $VGPUENV_CONFIG), -v/--verbose, -q/--quiet. */
const char *cli_default_config(void);
