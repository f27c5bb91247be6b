/* The pod sandbox's process for the test harness's containerd (tests/k8s/):
 * it holds the pod's namespaces, reaps children it inherits as PID 1 and exits
 * on SIGINT/SIGTERM, which is all the CRI asks of a pause image. Ours, built
 * static, because no registry is reachable to pull registry.k8s.io/pause. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
        (void)sig;
        _exit(0);
}

static void on_child(int sig)
{
        (void)sig;
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

int main(void)
{
        struct sigaction stop = {.sa_handler = on_stop};
        struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};

        if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
            sigaction(SIGCHLD, &child, NULL) < 0)
                return 2;
        for (;;)
                pause();
}
