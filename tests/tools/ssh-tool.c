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

struct options {
        struct node_target t;
        char *host_key;
        struct canceller canceller;
        double timeout, command_deadline;
};

static int parse_options(int argc, char **argv, struct options *o)
{
        int c;

        while ((c = getopt(argc, argv, "+H:p:u:i:k:t:n:C:T:")) >= 0) {
                switch (c) {
                case 'H':
                        o->t.host = optarg;
                        break;
                case 'p':
                        o->t.port = (unsigned)atoi(optarg);
                        break;
                case 'u':
                        o->t.user = optarg;
                        break;
                case 'i':
                        o->t.identity = optarg;
                        break;
                case 'k':
                        if (ssh_read_pubkey(optarg, &o->host_key) < 0)
                                return 99;
                        o->t.host_key = o->host_key;
                        break;
                case 't':
                        o->timeout = atof(optarg);
                        break;
                case 'n':
                        o->t.name = optarg;
                        break;
                case 'C':
                        o->canceller.after = atof(optarg);
                        break;
                case 'T':
                        o->command_deadline = atof(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "usage: ssh-tool [-H host -p port -u user -i key -k hostkey.pub -t "
                                "secs -C cancel-after -T command-deadline] CMD ...\n");
                return 2;
        }
        return 0;
}

/* Commands that need no connection. */
static int offline(const char *cmd, int argc, char **argv, bool *handled)
{
        _cleanup_free_ char *pub = NULL, *fp = NULL;
        int r;

        *handled = true;
        if (streq(cmd, "keygen") && argc >= 1) {
                r = ssh_keygen(argv[0], argc > 1 ? argv[1] : NULL, &pub);
                if (r < 0)
                        return fail(r);
                printf("%s\n", pub);
                return 0;
        }
        if (streq(cmd, "fingerprint") && argc >= 1) {
                r = ssh_read_pubkey(argv[0], &pub);
                if (r < 0)
                        return fail(r);
                if (!(fp = ssh_fingerprint(pub)))
                        return fail(-EINVAL);
                printf("%s\n", fp);
                return 0;
        }
        *handled = false;
        return 0;
}

static int parallel(const struct options *o, int argc, char **argv)
{
        int k = argc > 0 ? atoi(argv[0]) : 0, bad = 0;
        _cleanup_free_ struct par *w = NULL;
        _cleanup_free_ pthread_t *th = NULL;

        if (k <= 0 || argc < 2)
                return 2;
        w = calloc(k, sizeof(*w));
        th = calloc(k, sizeof(*th));
        if (!w || !th)
                return fail(-ENOMEM);
        for (int i = 0; i < k; i++) {
                w[i] = (struct par){.t = &o->t, .timeout = o->timeout, .argv = argv + 1};
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
        return bad ? 1 : 0;
}

/* One command on a connected node; its exit code, or -errno. */
static int on_node(struct ssh_node *n, const char *cmd, int argc, char **argv)
{
        if ((streq(cmd, "run") || streq(cmd, "script")) && argc >= 1) {
                _cleanup_proc_result_ struct proc_result res = {0};
                int r = streq(cmd, "run") ? ssh_node_run(n, argv, &res)
                                          : ssh_node_run_script(n, argv[0], &res);
                if (r < 0)
                        return r;
                fwrite(res.out.data, 1, res.out.len, stdout);
                fwrite(res.err.data, 1, res.err.len, stderr);
                return res.exit_code;
        }
        if (streq(cmd, "connect"))
                return 0;
        if (streq(cmd, "stream") || streq(cmd, "shell"))
                return ssh_node_run_streaming(
                    n, argv, streq(cmd, "shell") ? SSH_STDIN_TTY : SSH_STDIN_FORWARD);
        if (streq(cmd, "upload") && argc == 3)
                return ssh_node_upload(n, argv[0], argv[1], (mode_t)strtoul(argv[2], NULL, 8));
        if (streq(cmd, "upload-data") && argc == 2) {
                _cleanup_free_ char *data = NULL;
                size_t size = 0;
                int r = read_full_file("/dev/stdin", &data, &size);
                return r < 0 ? r
                             : ssh_node_upload_data(n, data, size, argv[0],
                                                    (mode_t)strtoul(argv[1], NULL, 8));
        }
        if (streq(cmd, "download") && argc == 2)
                return ssh_node_download(n, argv[0], argv[1]);
        fprintf(stderr, "ssh-tool: unknown command or wrong arguments: %s\n", cmd);
        return -EINVAL;
}

int main(int argc, char **argv)
{
        struct options o = {
            .t = {.name = "node", .host = "127.0.0.1", .port = 22, .user = "root"},
            .canceller = {.after = -1},
            .timeout = 10,
        };
        struct ssh_node *n = NULL;
        struct cancel command;
        pthread_t cancel_thread;
        bool handled;
        int r;

        log_set_prefix("ssh-tool");
        if (getenv("SSH_TOOL_DEBUG"))
                log_set_level(LOG_DEBUG);
        cancel_init_root(&o.canceller.token, NULL);
        if ((r = parse_options(argc, argv, &o)) != 0)
                return r;
        o.t.cancel = &o.canceller.token;
        if (o.canceller.after >= 0) {
                pthread_create(&cancel_thread, NULL, cancel_main, &o.canceller);
                pthread_detach(cancel_thread);
        }
        const char *cmd = argv[optind++];
        argc -= optind;
        argv += optind;
        r = offline(cmd, argc, argv, &handled);
        if (handled)
                return r;
        if (streq(cmd, "parallel"))
                return parallel(&o, argc, argv);
        r = ssh_node_connect(&o.t, o.timeout, &n);
        if (r < 0)
                return fail(r);
        /* -T: each command's own deadline, inside Ctrl-C's (-C) token. */
        cancel_init_child(&command, &o.canceller.token, o.command_deadline, "the -T deadline");
        ssh_node_set_cancel(n, &command);
        r = on_node(n, cmd, argc, argv);
        ssh_node_free(n);
        fflush(stdout);
        free(o.host_key);
        return r < 0 ? fail(r) : r;
}
