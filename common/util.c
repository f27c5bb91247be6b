/* Implementation of the small helpers declared in util.h. */
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t string_hash(const char *s)
{
        uint64_t h = 0xcbf29ce484222325ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
        return h;
}

char *strdup_vprintf(const char *fmt, va_list ap)
{
        char *s;

        return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

char *strdup_printf(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        char *s = strdup_vprintf(fmt, ap);
        va_end(ap);
        return s;
}

void strv_free(char **l)
{
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

size_t strv_length(char *const *l)
{
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

int strv_push(char ***l, char *value)
{
        size_t n = strv_length(*l);
        char **c;

        if (!value)
                return -ENOMEM;
        c = realloc(*l, sizeof(char *) * (n + 2));
        if (!c) {
                free(value);
                return -ENOMEM;
        }
        c[n] = value;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *value)
{
        return strv_push(l, strdup(value));
}

char **strv_copy(char *const *l)
{
        char **c = calloc(strv_length(l) + 1, sizeof(char *));

        if (!c)
                return NULL;
        for (size_t i = 0; l && l[i]; i++) {
                c[i] = strdup(l[i]);
                if (!c[i]) {
                        strv_free(c);
                        return NULL;
                }
        }
        return c;
}

bool strv_contains(char *const *l, const char *s)
{
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

char *strv_join(char *const *l, const char *sep)
{
        size_t n = 1, k = strlen(sep);
        char *r, *p;

        for (size_t i = 0; l && l[i]; i++)
                n += strlen(l[i]) + k;
        r = p = malloc(n);
        if (!r)
                return NULL;
        *p = 0;
        for (size_t i = 0; l && l[i]; i++) {
                if (i > 0)
                        p = stpcpy(p, sep);
                p = stpcpy(p, l[i]);
        }
        return r;
}

static bool shell_safe(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                            "-_./=:,+@%",
                            *s))
                        return false;
        return true;
}

char *shell_quote(const char *arg)
{
        size_t n = 3;
        char *r, *p;

        if (shell_safe(arg))
                return strdup(arg);
        for (const char *s = arg; *s; s++)
                n += *s == '\'' ? 4 : 1;
        r = p = malloc(n);
        if (!r)
                return NULL;
        *p++ = '\'';
        for (const char *s = arg; *s; s++) {
                if (*s == '\'')
                        p = stpcpy(p, "'\\''");
                else
                        *p++ = *s;
        }
        *p++ = '\'';
        *p = 0;
        return r;
}

char *shell_join(char *const *argv)
{
        _cleanup_strv_free_ char **q = NULL;

        for (size_t i = 0; argv && argv[i]; i++)
                if (strv_push(&q, shell_quote(argv[i])) < 0)
                        return NULL;
        return strv_join(q, " ");
}

int read_full_file(const char *path, char **ret, size_t *ret_size)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 0;

        if (!f)
                return negative_errno();
        for (;;) {
                if (cap - n < 4096) {
                        char *b;
                        cap = cap ? cap * 2 : 8192;
                        b = realloc(buf, cap + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                size_t k = fread(buf + n, 1, cap - n, f);
                n += k;
                if (k == 0) {
                        if (ferror(f))
                                return -EIO;
                        break;
                }
        }
        if (!buf && !(buf = malloc(1)))
                return -ENOMEM;
        buf[n] = 0;
        if (ret_size)
                *ret_size = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

int write_all(int fd, const void *data, size_t n)
{
        const char *p = data;
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        return -EIO; /* no progress: do not spin */
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode)
{
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp.%d", path, (int)getpid());
        _cleanup_close_ int fd = -1;
        int r;

        if (!tmp)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        r = write_all(fd, data, size);
        if (r >= 0 && (fchmod(fd, mode) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0))
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        return r;
}

int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int rm_rf(const char *path)
{
        struct stat st;
        DIR *d;
        int r = 0;

        if (isempty(path) || streq(path, "/"))
                return -EINVAL;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return unlink(path) < 0 ? negative_errno() : 0;
        d = opendir(path);
        if (!d)
                return negative_errno();
        for (struct dirent *de; (de = readdir(d));) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *c = strdup_printf("%s/%s", path, de->d_name);
                int k = c ? rm_rf(c) : -ENOMEM;
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        if (rmdir(path) < 0 && r == 0)
                r = negative_errno();
        return r;
}

bool file_exists(const char *path)
{
        return access(path, F_OK) == 0;
}

int copy_file(const char *from, const char *to, mode_t mode)
{
        _cleanup_free_ char *buf = NULL;
        size_t n;
        int r = read_full_file(from, &buf, &n);

        if (r < 0)
                return r;
        return write_file_atomic(to, buf, n, mode);
}

static void hex(const unsigned char *d, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", d[i]);
}

int sha256_hex(const void *data, size_t size, char out[65])
{
        unsigned char d[32];

        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, size, d) < 0)
                return -EIO;
        hex(d, sizeof(d), out);
        return 0;
}

int sha256_file_hex(const char *path, char out[65])
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        gnutls_hash_hd_t h;
        unsigned char d[32];
        static const size_t chunk = 1 << 20;
        _cleanup_free_ char *buf = malloc(chunk);
        size_t k;

        if (!f)
                return negative_errno();
        if (!buf)
                return -ENOMEM;
        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return -EIO;
        while ((k = fread(buf, 1, chunk, f)) > 0)
                gnutls_hash(h, buf, k);
        gnutls_hash_deinit(h, d);
        if (ferror(f))
                return -EIO;
        hex(d, sizeof(d), out);
        return 0;
}

bool all_digits(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

int parse_uint64(const char *s, unsigned long long min, unsigned long long max,
                 unsigned long long *ret)
{
        char *end;
        unsigned long long v;

        if (isempty(s) || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static char *dir_from_env(const char *var, const char *root_default, const char *xdg_var,
                          const char *home_suffix)
{
        const char *e = getenv(var);

        if (!isempty(e))
                return strdup(e);
        if (geteuid() == 0)
                return strdup(root_default);
        e = getenv(xdg_var);
        if (!isempty(e))
                return strdup_printf("%s/vgpuenv", e);
        e = getenv("HOME");
        return strdup_printf("%s/%s", isempty(e) ? "/tmp" : e, home_suffix);
}

char *vgpuenv_cache_dir(void)
{
        return dir_from_env("VGPUENV_CACHE_DIR", "/var/cache/vgpuenv", "XDG_CACHE_HOME",
                            ".cache/vgpuenv");
}

char *vgpuenv_state_dir(void)
{
        return dir_from_env("VGPUENV_STATE_DIR", "/var/lib/vgpuenv", "XDG_STATE_HOME",
                            ".local/state/vgpuenv");
}

bool startswith(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool endswith(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);

        return a >= b && streq(s + a - b, suffix);
}

char *shell_env_join(char *const *env)
{
        _cleanup_strv_free_ char **parts = NULL;

        for (size_t i = 0; env && env[i]; i++) {
                const char *eq = strchr(env[i], '=');
                _cleanup_free_ char *q = shell_quote(eq ? eq + 1 : "");
                if (!q ||
                    strv_push(&parts, strdup_printf("%.*s=%s",
                                                    (int)(eq ? eq - env[i] : (long)strlen(env[i])),
                                                    env[i], q)) < 0)
                        return NULL;
        }
        return parts ? strv_join(parts, " ") : strdup("");
}
