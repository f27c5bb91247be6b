/* ssh-tool: a thin command-line driver over provision/base/ssh.h, so that the
 * integration tests (tests/integration/ssh_*.sh) exercise the real library
 * code against a real sshd.
 *
 *   ssh-tool keygen PATH [COMMENT]        print the public key line
 *   ssh-tool fingerprint PUBFILE          print SHA256:...
 *   ssh-tool [conn opts] connect          connect and authenticate only
 *   ssh-tool [conn opts] run ARGV...      stdout/stderr verbatim, exit = remote exit
 *   ssh-tool [conn opts] script TEXT      sh -c TEXT on the node
 *   ssh-tool [conn opts] stream ARGV...   streamed output (ssh_node_run_streaming)
 *   ssh-tool [conn opts] shell [ARGV...]  interactive (PTY when stdin is a tty)
 *   ssh-tool [conn opts] upload LOCAL REMOTE MODE
 *   ssh-tool [conn opts] upload-data REMOTE MODE   (data from our stdin)
 *   ssh-tool [conn opts] download REMOTE LOCAL
 *   ssh-tool [conn opts] parallel N ARGV...  N threads, each its own connection
 *
 * conn opts: -H HOST -p PORT -u USER -i IDENTITY -k HOSTKEY.pub -t TIMEOUT -n NAME
 *            -C SECS  set the target's cancel flag after SECS (as Ctrl-C does)
 * A library failure prints "ssh-tool: failed: <errno text>" and exits 99. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/proc.h"
#include "common/util.h"
#include "provision/base/ssh.h"

static int fail(int r)
{
        fprintf(stderr, "ssh-tool: failed: %s\n", strerror(-r));
        return 99;
}

struct par {
        const struct node_target *t;
        double timeout;
        char **argv;
        int r;
        struct proc_result res;
};

struct canceller {
        struct cancel token;
        double after;
};

static void *cancel_main(void *p)
{
        struct canceller *c = p;

        usleep((useconds_t)(c->after * 1e6));
        cancel_fire(&c->token, ECANCELED);
        return NULL;
}

static void *par_main(void *p)
{
        struct par *w = p;
        struct ssh_node *n = NULL;

        w->r = ssh_node_connect(w->t, w->timeout, &n);
        if (w->r >= 0)
                w->r = ssh_node_run(n, w->argv, &w->res);
        ssh_node_free(n);
        return NULL;
}

int main(int argc, char **argv)
{
        struct node_target t = {.name = "node", .host = "127.0.0.1", .port = 22, .user = "root"};
        _cleanup_free_ char *host_key = NULL;
        struct ssh_node *n = NULL;
        struct canceller canceller = {.after = -1};
        struct cancel command;
        pthread_t cancel_thread;
        double timeout = 10, command_deadline = 0;
        const char *cmd;
        int c, r;

        log_set_prefix("ssh-tool");
        if (getenv("SSH_TOOL_DEBUG"))
                log_set_level(LOG_DEBUG);
        cancel_init_root(&canceller.token, NULL);
        while ((c = getopt(argc, argv, "+H:p:u:i:k:t:n:C:T:")) >= 0) {
                switch (c) {
                case 'H':
                        t.host = optarg;
                        break;
                case 'p':
                        t.port = (unsigned)atoi(optarg);
                        break;
                case 'u':
                        t.user = optarg;
                        break;
                case 'i':
                        t.identity = optarg;
                        break;
                case 'k':
                        if (ssh_read_pubkey(optarg, &host_key) < 0)
                                return 99;
                        t.host_key = host_key;
                        break;
                case 't':
                        timeout = atof(optarg);
                        break;
                case 'n':
                        t.name = optarg;
                        break;
                case 'C':
                        canceller.after = atof(optarg);
                        break;
                case 'T':
                        command_deadline = atof(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "usage: ssh-tool [-H host -p port -u user -i key -k hostkey.pub -t "
                                "secs] CMD ...\n");
                return 2;
        }
        t.cancel = &canceller.token;
        if (canceller.after >= 0) {
                pthread_create(&cancel_thread, NULL, cancel_main, &canceller);
                pthread_detach(cancel_thread);
        }
        cmd = argv[optind++];
        argc -= optind;
        argv += optind;

        if (streq(cmd, "keygen")) {
                _cleanup_free_ char *pub = NULL;
                if (argc < 1)
                        return 2;
                r = ssh_keygen(argv[0], argc > 1 ? argv[1] : NULL, &pub);
                if (r < 0)
                        return fail(r);
                printf("%s\n", pub);
                return 0;
        }
        if (streq(cmd, "fingerprint")) {
                _cleanup_free_ char *pub = NULL, *fp = NULL;
                if (argc < 1)
                        return 2;
                r = ssh_read_pubkey(argv[0], &pub);
                if (r < 0)
                        return fail(r);
                fp = ssh_fingerprint(pub);
                if (!fp)
                        return fail(-EINVAL);
                printf("%s\n", fp);
                return 0;
        }
        if (streq(cmd, "parallel")) {
                int k = argc > 0 ? atoi(argv[0]) : 0, bad = 0;
                struct par *w;
                pthread_t *th;

                if (k <= 0 || argc < 2)
                        return 2;
                w = calloc(k, sizeof(*w));
                th = calloc(k, sizeof(*th));
                for (int i = 0; i < k; i++) {
                        w[i] = (struct par){.t = &t, .timeout = timeout, .argv = argv + 1};
                        pthread_create(&th[i], NULL, par_main, &w[i]);
                }
                for (int i = 0; i < k; i++) {
                        pthread_join(th[i], NULL);
                        if (w[i].r < 0 || w[i].res.exit_code != 0)
                                bad++;
                        printf("%d %d %s", i, w[i].r < 0 ? w[i].r : w[i].res.exit_code,
                               w[i].res.out.data ?: "\n");
                        proc_result_done(&w[i].res);
                }
                free(w);
                free(th);
                return bad ? 1 : 0;
        }

        r = ssh_node_connect(&t, timeout, &n);
        if (r < 0)
                return fail(r);
        /* -T: each command's own deadline, inside Ctrl-C's (-C) token. */
        cancel_init_child(&command, &canceller.token, command_deadline, "the -T deadline");
        ssh_node_set_cancel(n, &command);

        if (streq(cmd, "connect")) {
                r = 0;
        } else if (streq(cmd, "run") || streq(cmd, "script")) {
                _cleanup_proc_result_ struct proc_result res = {0};
                if (argc < 1) {
                        ssh_node_free(n);
                        return 2;
                }
                r = streq(cmd, "run") ? ssh_node_run(n, argv, &res)
                                      : ssh_node_run_script(n, argv[0], &res);
                if (r >= 0) {
                        fwrite(res.out.data, 1, res.out.len, stdout);
                        fwrite(res.err.data, 1, res.err.len, stderr);
                        r = res.exit_code;
                }
        } else if (streq(cmd, "stream") || streq(cmd, "shell")) {
                r = ssh_node_run_streaming(n, argv,
                                           streq(cmd, "shell") ? SSH_STDIN_TTY : SSH_STDIN_FORWARD);
        } else if (streq(cmd, "upload") && argc == 3) {
                r = ssh_node_upload(n, argv[0], argv[1], (mode_t)strtoul(argv[2], NULL, 8));
        } else if (streq(cmd, "upload-data") && argc == 2) {
                _cleanup_free_ char *data = NULL;
                size_t size = 0;
                r = read_full_file("/dev/stdin", &data, &size);
                if (r >= 0)
                        r = ssh_node_upload_data(n, data, size, argv[0],
                                                 (mode_t)strtoul(argv[1], NULL, 8));
        } else if (streq(cmd, "download") && argc == 2) {
                r = ssh_node_download(n, argv[0], argv[1]);
        } else {
                fprintf(stderr, "ssh-tool: unknown command or wrong arguments: %s\n", cmd);
                r = -EINVAL;
        }
        ssh_node_free(n);
        fflush(stdout);
        return r < 0 ? fail(r) : r;
}
