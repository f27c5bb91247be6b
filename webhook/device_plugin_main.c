/* mesa-injector-device-plugin: the kubelet device plugin for the render
 * node, run as `mesa-injector device-plugin` (which execs this program: it
 * links gRPC, which the webhook server should not carry) by the DaemonSet
 * that `mesa-injector manifests` prints, or by hand and by tests with the
 * directories on the command line. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/config.h"
#include "webhook/device_plugin.h"
#include "webhook/program.h"

static void usage(FILE *f)
{
        fputs("usage: mesa-injector device-plugin [--config FILE] [--socket-dir DIR]\n"
              "                                   [--device-glob GLOB] [--device-root DIR] "
              "[--verbose]\n\n"
              "Advertises each render node (devicePlugin.deviceGlob) to the kubelet as\n"
              "devicePlugin.sharesPerNode devices of devicePlugin.resourceName, over the\n"
              "kubelet device plugin API v1beta1 in DIR (default "
              "/var/lib/kubelet/device-plugins).\n"
              "Stops cleanly on SIGINT/SIGTERM and removes its socket.\n\n"
              "  --config FILE       mesa-injector configuration (devicePlugin section)\n"
              "  --socket-dir DIR    overrides devicePlugin.socketDir\n"
              "  --device-glob GLOB  overrides devicePlugin.deviceGlob (host paths)\n"
              "  --device-root DIR   overrides devicePlugin.deviceRoot (where the host's / is)\n"
              "  --verbose           log every call\n",
              f);
}

static int set(char **field, const char *value)
{
        free(*field);
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                             {"socket-dir", required_argument, NULL, 's'},
                                             {"device-glob", required_argument, NULL, 'g'},
                                             {"device-root", required_argument, NULL, 'r'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {}};
        const char *config = NULL, *socket_dir = NULL, *glob = NULL, *root = NULL;
        struct injector_config c = {};
        int opt;

        log_set_prefix("mesa-injector device-plugin");
        while ((opt = getopt_long(argc, argv, "c:s:g:r:vh", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config = optarg;
                        break;
                case 's':
                        socket_dir = optarg;
                        break;
                case 'g':
                        glob = optarg;
                        break;
                case 'r':
                        root = optarg;
                        break;
                case 'v':
                        log_set_level(LOG_DEBUG);
                        break;
                default:
                        return program_usage_exit(opt == 'h', usage);
                }
        }
        if (program_refuse_operands(argc, argv, usage))
                return 2;
        if (injector_config_load(&c, config, NULL) < 0) {
                injector_config_done(&c);
                return 2;
        }
        struct injector_device_plugin *d = &c.device_plugin;
        if ((socket_dir && set(&d->socket_dir, socket_dir) < 0) ||
            (glob && set(&d->device_glob, glob) < 0) || (root && set(&d->device_root, root) < 0)) {
                injector_config_done(&c);
                return 1;
        }
        /* Overrides go through the same checks as the file. */
        int r = 0;
        if (socket_dir || glob || root) {
                free(c.source);
                c.source = strdup("command line");
                r = device_plugin_config_check(&c, NULL);
        }
        if (r < 0) {
                injector_config_done(&c);
                return 2;
        }
        /* Blocked in every thread (gRPC starts its own): the plugin's poll()
         * takes them from a signalfd. */
        program_block_stop_signals();
        r = device_plugin_run(&c);
        injector_config_done(&c);
        return r < 0 ? 1 : 0;
}
