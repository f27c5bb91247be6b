/* mesa-injector-hook-sidecar: the onDefineDomain hook as a KubeVirt hook
 * sidecar of its own, the container virt-controller adds to a virt-launcher
 * pod for our entry in hooks.kubevirt.io/hookSidecars ({"image": ...,
 * "command": [this program]}). It serves KubeVirt's hook API (Info, the
 * v1alpha1..3 Callbacks) with gRPC's C core on a unix socket in
 * /var/run/kubevirt-hooks/, where virt-launcher finds it, and adds the
 * egl-headless display to the domain with libxml2 (webhook/domain_hook.c),
 * so it needs no ConfigMap, no shell and nothing in the VMI's namespace.
 *
 * The socket, as upstream arranges it (kubevirt d923fdb8): virt-controller
 * mounts the pod's hook-sidecar-sockets emptyDir into this container at
 * /var/run/kubevirt-hooks with subPath = the container's name and sets
 * CONTAINER_NAME to it (services/template.go newSidecarContainerRenderer,
 * sidecarVolumeMount); virt-launcher's compute container sees every
 * sidecar's directory below its own /var/run/kubevirt-hooks and remembers
 * the sockets it has collected by file name only (pkg/hooks/manager.go
 * collectSideCarSockets), so two sidecars must not use the same name:
 * ours is mesa-injector-<CONTAINER_NAME>.sock. */
#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "webhook/grpc_unary.h"
#include "webhook/hook_sidecar_rpc.h"
#include "webhook/program.h"

#define SOCKET_DIR "/var/run/kubevirt-hooks" /* pkg/hooks/hooks.go HookSocketsSharedDirectory */
#define MAX_MESSAGE (16 << 20) /* a domain and a VMI: tens of KiB; big ones a few MiB */
#define STOP_GRACE_MS 1000

static void usage(FILE *f)
{
        fputs("usage: mesa-injector hook-sidecar [--socket-dir DIR] [--socket NAME]\n"
              "                                  [--render-node PATH] [--verbose]\n\n"
              "KubeVirt hook sidecar: serves Info and OnDefineDomain (hook API v1alpha1,\n"
              "v1alpha2, v1alpha3) on DIR/NAME and adds\n"
              "<graphics type=\"egl-headless\"><gl rendernode=\"PATH\"/></graphics> to the\n"
              "domain. Exits after v1alpha3's Shutdown, or on SIGTERM/SIGINT.\n\n"
              "  --socket-dir DIR    default " SOCKET_DIR " (must exist)\n"
              "  --socket NAME       default mesa-injector-$CONTAINER_NAME.sock\n"
              "  --render-node PATH  default " VGPUENV_RENDER_NODE "\n"
              "  --verbose           log every call\n",
              f);
}

struct sidecar {
        struct hook_rpc rpc;
        int wake; /* eventfd: a Shutdown call came */
};

static int handle(void *userdata, const char *method, size_t method_len, const uint8_t *req,
                  size_t len, struct grpc_reply *out)
{
        struct sidecar *sc = userdata;
        int r = hook_rpc_answer(&sc->rpc, method, method_len, req, len, out);
        log_debug("%.*s: %zu bytes, status %d%s%s", (int)method_len, method, len, out->status,
                  out->message ? ": " : "", out->message ? out->message : "");
        if (r >= 0 && out->status != 0)
                log_info("answered %.*s with status %d: %s", (int)method_len, method, out->status,
                         out->message);
        if (sc->rpc.shutdown_requested)
                (void)eventfd_write(sc->wake, 1);
        return r;
}

static const char *render_node_problem(const char *p)
{
        if (!startswith(p, "/dev/") || strstr(p, "/../") || strstr(p, "/./") ||
            endswith(p, "/..") || endswith(p, "/."))
                return "must be an absolute path under /dev";
        if (p[strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_.-")])
                return "may only contain letters, digits, '/', '_', '.' and '-'";
        return NULL;
}

static char *socket_path(const char *dir, const char *name)
{
        if (name)
                return strdup_printf("%s/%s", dir, name);
        const char *container = getenv("CONTAINER_NAME");
        if (!isempty(container) && !strchr(container, '/'))
                return strdup_printf("%s/mesa-injector-%s.sock", dir, container);
        /* Not started by virt-controller: unique enough on one machine. */
        return strdup_printf("%s/mesa-injector-%ld.sock", dir, (long)getpid());
}

/* Until SIGTERM/SIGINT or a Shutdown call. */
static void wait_for_end(int sigfd, int wake)
{
        struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = wake, .events = POLLIN}};
        for (;;) {
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        return;
                if (p[0].revents) {
                        struct signalfd_siginfo si;
                        if (read(sigfd, &si, sizeof(si)) == sizeof(si))
                                log_info("%s: stopping", strsignal((int)si.ssi_signo));
                        return;
                }
                if (p[1].revents) {
                        log_info("Shutdown: the domain is gone, stopping");
                        return;
                }
        }
}

static int run(const char *dir, const char *name, const char *render_node)
{
        struct stat st;
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR,
                                       "%s is not a directory: virt-controller mounts the pod's "
                                       "hook socket volume there (run as a KubeVirt hook "
                                       "sidecar, or give --socket-dir)",
                                       dir);
        _cleanup_free_ char *path = socket_path(dir, name);
        if (!path)
                return -ENOMEM;
        if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return log_error_errno(-ENAMETOOLONG, "%s is too long for a unix socket", path);
        sigset_t mask;
        program_stop_signals(&mask);
        int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
        struct sidecar sc = {.rpc = {.render_node = render_node}, .wake = eventfd(0, EFD_CLOEXEC)};
        if (sigfd < 0 || sc.wake < 0) {
                int r = log_error_errno(-errno, "signalfd/eventfd: %m");
                if (sigfd >= 0)
                        close(sigfd);
                if (sc.wake >= 0)
                        close(sc.wake);
                return r;
        }
        grpc_init();
        struct grpc_unary_server *s = NULL;
        int r = grpc_unary_server_start(path, MAX_MESSAGE, handle, &sc, &s);
        if (r >= 0) {
                log_info("serving KubeVirt's hook API on %s (render node %s)", path, render_node);
                wait_for_end(sigfd, sc.wake);
                grpc_unary_server_stop(s, STOP_GRACE_MS);
                log_info("stopped; removed %s", path);
        }
        grpc_shutdown();
        close(sigfd);
        close(sc.wake);
        return r;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"socket-dir", required_argument, NULL, 'd'},
                                             {"socket", required_argument, NULL, 's'},
                                             {"render-node", required_argument, NULL, 'r'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {}};
        const char *dir = SOCKET_DIR, *name = NULL, *render_node = VGPUENV_RENDER_NODE;
        int opt;

        log_set_prefix("mesa-injector hook-sidecar");
        while ((opt = getopt_long(argc, argv, "d:s:r:vh", opts, NULL)) != -1) {
                if (opt == 'd')
                        dir = optarg;
                else if (opt == 's')
                        name = optarg;
                else if (opt == 'r')
                        render_node = optarg;
                else if (opt == 'v')
                        log_set_level(LOG_DEBUG);
                else
                        return program_usage_exit(opt == 'h', usage);
        }
        if (program_refuse_operands(argc, argv, usage))
                return 2;
        const char *why = render_node_problem(render_node);
        if (why) {
                log_error("--render-node '%s' %s", render_node, why);
                return 2;
        }
        if (name && (isempty(name) || strchr(name, '/'))) {
                log_error("--socket '%s' must be a file name", name);
                return 2;
        }
        /* Blocked in every thread (gRPC starts its own): the main thread
         * takes them from a signalfd. */
        program_block_stop_signals();
        return run(dir, name, render_node) < 0 ? 1 : 0;
}
