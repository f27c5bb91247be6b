/* ssh keys: generating the user and host keys, reading public keys, the
 * fingerprints messages show (see ssh.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/ssh_internal.h"

/* ---- keys ------------------------------------------------------------------ */

/* Split "type base64 [comment]" into its first two fields. */
int ssh_split_pub_line(const char *line, char **ret_type, char **ret_b64)
{
        _cleanup_free_ char *type = NULL, *b64 = NULL;
        const char *p = line, *e;

        p += strspn(p, " \t");
        e = p + strcspn(p, " \t\r\n");
        if (e == p)
                return -EINVAL;
        type = strndup(p, e - p);
        p = e + strspn(e, " \t");
        e = p + strcspn(p, " \t\r\n");
        if (e == p)
                return -EINVAL;
        b64 = strndup(p, e - p);
        if (!type || !b64)
                return -ENOMEM;
        *ret_type = TAKE_PTR(type);
        *ret_b64 = TAKE_PTR(b64);
        return 0;
}

static int import_pub_line(const char *line, ssh_key *ret)
{
        _cleanup_free_ char *type = NULL, *b64 = NULL;
        enum ssh_keytypes_e kt;
        int r;

        r = ssh_split_pub_line(line, &type, &b64);
        if (r < 0)
                return r;
        kt = ssh_key_type_from_name(type);
        if (kt == SSH_KEYTYPE_UNKNOWN)
                return -EINVAL;
        if (ssh_pki_import_pubkey_base64(b64, kt, ret) != SSH_OK)
                return -EINVAL;
        return 0;
}

char *ssh_key_fingerprint(const ssh_key key)
{
        unsigned char *hash = NULL;
        size_t hlen = 0;
        char *fp, *r;

        if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) < 0)
                return NULL;
        /* libssh prints "SHA256:" + unpadded base64, the same as ssh-keygen -l. */
        fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
        ssh_clean_pubkey_hash(&hash);
        if (!fp)
                return NULL;
        r = strdup(fp);
        ssh_string_free_char(fp);
        return r;
}

char *ssh_fingerprint(const char *pub_line)
{
        _cleanup_(ssh_key_freep) ssh_key key = NULL;

        if (!pub_line || import_pub_line(pub_line, &key) < 0)
                return NULL;
        return ssh_key_fingerprint(key);
}

int ssh_keygen(const char *path, const char *comment, char **ret_pub)
{
        _cleanup_(ssh_key_freep) ssh_key key = NULL;
        _cleanup_(ssh_string_free_charp) char *b64 = NULL;
        _cleanup_free_ char *tmp = NULL, *pub_path = NULL, *line = NULL;
        int fd, r;

        if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK)
                return log_error_errno(EIO, "cannot generate an ed25519 key for %s", path);

        /* libssh writes with fopen(), honouring the umask; create the file
         * 0600 first so the private key is never readable by others, then
         * rename it into place so a reader never sees half a key. */
        /* mkstemp: two threads of one process may make keys side by side. */
        tmp = strdup_printf("%s.tmp.XXXXXX", path);
        pub_path = strdup_printf("%s.pub", path);
        if (!tmp || !pub_path)
                return log_error_errno(ENOMEM, "out of memory");
        fd = mkstemp(tmp);
        if (fd < 0)
                return log_error_errno(errno, "cannot create %s: %m", tmp);
        (void)fchmod(fd, 0600);
        close(fd);
        if (ssh_pki_export_privkey_file(key, NULL, NULL, NULL, tmp) != SSH_OK) {
                unlink(tmp);
                return log_error_errno(EIO, "cannot write private key %s", path);
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
                return log_error_errno(r, "cannot rename %s to %s: %m", tmp, path);
        }

        if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
                return log_error_errno(EIO, "cannot export the public key of %s", path);
        line = isempty(comment) ? strdup_printf("ssh-ed25519 %s", b64)
                                : strdup_printf("ssh-ed25519 %s %s", b64, comment);
        if (!line)
                return log_error_errno(ENOMEM, "out of memory");
        {
                _cleanup_free_ char *text = strdup_printf("%s\n", line);
                if (!text)
                        return log_error_errno(ENOMEM, "out of memory");
                r = write_file_atomic(pub_path, text, strlen(text), 0644);
                if (r < 0)
                        return log_error_errno(r, "cannot write %s: %s", pub_path, strerror(-r));
        }
        if (ret_pub)
                *ret_pub = TAKE_PTR(line);
        return 0;
}

int ssh_read_pubkey(const char *pub_path, char **ret_pub)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_(ssh_key_freep) ssh_key key = NULL;
        char *line, *save = NULL;
        int r;

        r = read_full_file(pub_path, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "cannot read public key %s: %s", pub_path, strerror(-r));
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                size_t n;

                line += strspn(line, " \t");
                n = strlen(line);
                while (n > 0 && strchr(" \t\r", line[n - 1]))
                        line[--n] = 0;
                if (n == 0 || line[0] == '#')
                        continue;
                if (import_pub_line(line, &key) < 0)
                        break;
                if (!ret_pub)
                        return 0;
                *ret_pub = strdup(line);
                return *ret_pub ? 0 : log_error_errno(ENOMEM, "out of memory");
        }
        return log_error_errno(
            EINVAL, "%s does not hold an OpenSSH public key line (\"ssh-ed25519 AAAA...\")",
            pub_path);
}
