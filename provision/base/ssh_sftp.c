/* File transfer to and from nodes over SFTP (see ssh.h): written beside the
 * target and renamed into place, so no reader sees half a file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/ssh_internal.h"

/* ---- file transfer --------------------------------------------------------- */

static int sftp_open_session(struct ssh_node *n, sftp_session *ret)
{
        _cleanup_(sftp_freep) sftp_session sftp = sftp_new(n->session);

        if (!sftp)
                return log_error_errno(EIO, "cannot start SFTP on %s (%s:%u): %s", n->name, n->host,
                                       n->port, ssh_get_error(n->session));
        if (sftp_init(sftp) != SSH_OK)
                return log_error_errno(EIO, "SFTP is not available on %s (%s:%u): %s (error %d)",
                                       n->name, n->host, n->port, ssh_get_error(n->session),
                                       sftp_get_error(sftp));
        *ret = TAKE_PTR(sftp);
        return 0;
}

static const char *sftp_strerror(sftp_session sftp)
{
        switch (sftp_get_error(sftp)) {
        case SSH_FX_NO_SUCH_FILE:
                return "no such file or directory";
        case SSH_FX_PERMISSION_DENIED:
                return "permission denied";
        case SSH_FX_FAILURE:
                return "failure";
        case SSH_FX_FILE_ALREADY_EXISTS:
                return "file exists";
        default:
                return "SFTP error";
        }
}

/* Where the bytes of an upload come from: a memory buffer or a file. */
struct source {
        const char *data;
        size_t size;
        int fd;
};

static int upload(struct ssh_node *n, struct source *src, const char *label, const char *remote,
                  mode_t mode)
{
        _cleanup_(sftp_freep) sftp_session sftp = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        sftp_file f;
        size_t off = 0;
        int r;

        if (isempty(remote))
                return log_error_errno(EINVAL, "no remote path for %s", label);
        r = sftp_open_session(n, &sftp);
        if (r < 0)
                return r;
        /* Write beside the target and rename, so a reader on the node (or a
         * crash of ours) never sees a half-written file. */
        tmp = strdup_printf("%s.vgpuenv-tmp", remote);
        if (!tmp)
                return log_error_errno(ENOMEM, "out of memory");
        f = sftp_open(sftp, tmp, O_WRONLY | O_CREAT | O_TRUNC, (mode & 07777) | 0200);
        if (!f)
                return log_error_errno(EIO, "cannot create %s on %s: %s", tmp, n->name,
                                       sftp_strerror(sftp));
        for (;;) {
                char b[32768];
                const char *p;
                size_t k;

                if (src->fd >= 0) {
                        ssize_t got = read(src->fd, b, sizeof(b));
                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got < 0) {
                                r = log_error_errno(errno, "cannot read %s: %m", label);
                                break;
                        }
                        p = b;
                        k = (size_t)got;
                } else {
                        p = src->data + off;
                        k = src->size - off < sizeof(b) ? src->size - off : sizeof(b);
                        off += k;
                }
                if (k == 0)
                        break;
                if ((r = cancel_check(n->cancel)) < 0) {
                        log_error_errno(r, "%s: upload of %s stopped: %s", n->name, label,
                                        r == -ECANCELED ? "interrupted" : "out of time");
                        break;
                }
                while (k > 0) {
                        ssize_t w = sftp_write(f, p, k);
                        if (w <= 0) {
                                r = log_error_errno(EIO, "cannot write %s on %s: %s", tmp, n->name,
                                                    sftp_strerror(sftp));
                                break;
                        }
                        p += w;
                        k -= (size_t)w;
                }
                if (r < 0)
                        break;
        }
        if (sftp_close(f) != SSH_NO_ERROR && r >= 0)
                r = log_error_errno(EIO, "cannot finish writing %s on %s: %s", tmp, n->name,
                                    sftp_strerror(sftp));
        /* The server's umask may have trimmed the mode given to open(). */
        if (r >= 0 && sftp_chmod(sftp, tmp, mode & 07777) < 0)
                r = log_error_errno(EIO, "cannot chmod %s on %s: %s", tmp, n->name,
                                    sftp_strerror(sftp));
        if (r < 0) {
                (void)sftp_unlink(sftp, tmp);
                return r;
        }
        /* SFTP v3 rename refuses to replace an existing file and libssh 0.10
         * has no posix-rename; mv -f is rename(2), atomic on one file system. */
        {
                char *const mv[] = {(char *)"mv", (char *)"-f",   (char *)"--",
                                    tmp,          (char *)remote, NULL};

                r = ssh_node_run(n, mv, &res);
                if (r >= 0 && res.exit_code != 0) {
                        log_error("cannot move %s into place as %s on %s: %s", tmp, remote, n->name,
                                  isempty(res.err.data) ? "mv failed" : res.err.data);
                        r = -EIO;
                }
        }
        if (r < 0)
                (void)sftp_unlink(sftp, tmp);
        return r;
}

int ssh_node_upload(struct ssh_node *n, const char *local, const char *remote, mode_t mode)
{
        _cleanup_close_ int fd = open(local, O_RDONLY | O_CLOEXEC);
        struct source src = {.fd = -1};

        if (fd < 0)
                return log_error_errno(errno, "cannot open %s for upload to %s: %m", local,
                                       n->name);
        src.fd = fd;
        return upload(n, &src, local, remote, mode);
}

int ssh_node_upload_data(struct ssh_node *n, const void *data, size_t size, const char *remote,
                         mode_t mode)
{
        struct source src = {.data = data, .size = size, .fd = -1};

        return upload(n, &src, remote, remote, mode);
}

int ssh_node_download(struct ssh_node *n, const char *remote, const char *local)
{
        _cleanup_(sftp_freep) sftp_session sftp = NULL;
        _cleanup_(sftp_attributes_freep) sftp_attributes attr = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        mode_t mode = 0644;
        sftp_file f;
        int r = 0;

        r = sftp_open_session(n, &sftp);
        if (r < 0)
                return r;
        f = sftp_open(sftp, remote, O_RDONLY, 0);
        if (!f)
                return log_error_errno(sftp_get_error(sftp) == SSH_FX_NO_SUCH_FILE ? ENOENT : EIO,
                                       "cannot open %s on %s: %s", remote, n->name,
                                       sftp_strerror(sftp));
        attr = sftp_fstat(f);
        if (attr && (attr->flags & SSH_FILEXFER_ATTR_PERMISSIONS))
                mode = attr->permissions & 07777;
        tmp = strdup_printf("%s.tmp.%d", local, (int)getpid());
        if (!tmp) {
                sftp_close(f);
                return log_error_errno(ENOMEM, "out of memory");
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = log_error_errno(errno, "cannot create %s: %m", tmp);
                sftp_close(f);
                return r;
        }
        for (;;) {
                char b[32768];
                ssize_t k = sftp_read(f, b, sizeof(b));

                if (k < 0) {
                        r = log_error_errno(EIO, "cannot read %s on %s: %s", remote, n->name,
                                            sftp_strerror(sftp));
                        break;
                }
                if (k == 0)
                        break;
                r = write_all(fd, b, (size_t)k);
                if (r < 0) {
                        r = log_error_errno(r, "cannot write %s: %s", tmp, strerror(-r));
                        break;
                }
        }
        sftp_close(f);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = log_error_errno(errno, "cannot chmod %s: %m", tmp);
        if (r >= 0 && rename(tmp, local) < 0)
                r = log_error_errno(errno, "cannot rename %s to %s: %m", tmp, local);
        if (r < 0)
                unlink(tmp);
        return r;
}
