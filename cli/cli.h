/* Helpers shared by the cmd_*.c files: loading the config into a run
 * context with the uniform exit codes, and the common options. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "provision/base/config.h"
#include "provision/base/context.h"
#include <cjson/cJSON.h>

struct cli_session {
        struct config cfg;
        struct run_ctx ctx;
        bool have_ctx;
};

/* Load config_path (NULL: default) and set up the run context. Returns an
 * exit code: EXIT_OK, or EXIT_USAGE for a bad config (message already
 * printed), EXIT_FAIL otherwise. */
int cli_session_open(struct cli_session *s, const char *config_path);
void cli_session_close(struct cli_session *s);

/* Map a negative errno from an operation to an exit code. */
int cli_exit_code(int r);

/* -v/-q handling shared by every command. */
void cli_verbosity(int delta);

/* The options commands share, for the getopt loop once a command has
 * handled its own: -c FILE into *config, -v, -q, -h (usage on stdout) and
 * anything else (usage on stderr). Returns CLI_NEXT_OPTION to go on, else
 * the exit code to return. getopt only yields what the command's option
 * string lists, so a command without -q never sees it here. */
enum { CLI_NEXT_OPTION = -1 };
int cli_common_option(int c, const char **config, void (*usage)(FILE *));

/* The shape most commands share: -c FILE, -v, -q, -h, one flag of their
 * own (--dry-run, --json; none when flag_long is NULL), no arguments; the
 * config loaded into a session, then run(session, flag). */
struct cli_session_command {
        const char *name; /* "up", for messages */
        void (*usage)(FILE *);
        const char *flag_long;
        char flag_short;
        /* 0 or a negative errno (mapped by cli_exit_code). */
        int (*run)(struct cli_session *s, bool flag);
};
/* Parse argv from index first (past the command's own words) and run cmd.
 * Returns the exit code. */
int cli_run_session_command(const struct cli_session_command *cmd, int argc, char **argv,
                            int first);

struct state;
/* Read the state of an `up` cluster (never written back). -ENOENT (logged as
 * "cluster X is not up: run 'vgpuenv up -c FILE' first" unless quiet) when
 * there is none. */
int cli_open_cluster_state(struct cli_session *s, struct state *st, bool quiet);

/* Print a JSON document on stdout (the --json output of every command). */
void cli_print_json(const cJSON *j);
