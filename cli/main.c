/* vgpuenv: the command dispatcher. One cmd_*.c per subcommand; this file only
 * finds the command by name and prints the overview. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"

static const struct cli_command commands[] = {
    {"up", "bring the cluster's nodes up and prove their render node works", .session = &cli_up},
    {"down", "remove everything 'up' created", .session = &cli_down},
    {"status", "show the cluster's nodes and objects (--json)", .session = &cli_status},
    {"ssh", "open a shell or run a command on a node", cmd_ssh},
    {"image", "build or inspect node images", cmd_image},
    {"probe", "run the render-node probe on the nodes", .session = &cli_probe},
    {"doctor", "check the host and the nodes", cmd_doctor},
    {"e2e", "run KubeVirt's MediatedDevices tests and report", cmd_e2e},
    {"verify-display", "prove the vGPU display chain on a node", cmd_verify_display},
    {"vgpu", "the fake NVIDIA T4 vGPU on a node or on this host", cmd_vgpu},
    {"config", "validate a config or print the reference", cmd_config},
};

static void usage(FILE *out)
{
        fprintf(out, "usage: vgpuenv <command> [-c FILE] [options]\n\n"
                     "Provision KubeVirt test nodes where a vGPU display works.\n\ncommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(out, "  %-15s %s\n", commands[i].name, commands[i].summary);
        fprintf(out, "\n'vgpuenv <command> --help' describes a command's options.\n"
                     "The config defaults to $VGPUENV_CONFIG or configs/local.yaml.\n");
}

int main(int argc, char **argv)
{
        log_set_prefix("vgpuenv");
        if (argc < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                usage(stdout);
                return EXIT_OK;
        }
        if (streq(argv[1], "--version")) {
                printf("vgpuenv 0.1\n");
                return EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (streq(argv[1], commands[i].name))
                        return commands[i].session ? cli_run_session_command(commands[i].session,
                                                                             argc - 1, argv + 1, 1)
                                                   : commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "vgpuenv: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
}
