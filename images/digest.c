/* Content digests of base images, remembered by path, size, mtime and inode
 * so a multi-GB cloud image is read once, not on every `up`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "images/image.h"

int image_file_digest(struct run_ctx *ctx, const char *path, char out[65])
{
        struct stat st;
        char id[65];
        _cleanup_free_ char *ident = NULL, *dir = NULL, *memo = NULL, *cached = NULL;
        int r;

        if (stat(path, &st) < 0)
                return log_error_errno(errno, "base image %s: %m", path);
        ident = strdup_printf("%s\n%lld\n%lld.%09ld\n%llu\n", path, (long long)st.st_size,
                              (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                              (unsigned long long)st.st_ino);
        if (!ident)
                return -ENOMEM;
        r = sha256_hex(ident, strlen(ident), id);
        if (r < 0)
                return r;
        dir = strdup_printf("%s/digests", ctx->cache_dir);
        memo = strdup_printf("%s/%s", dir, id);
        if (!dir || !memo)
                return -ENOMEM;
        if (read_full_file(memo, &cached, NULL) >= 0 && strlen(cached) >= 64) {
                memcpy(out, cached, 64);
                out[64] = 0;
                return 0;
        }
        log_info("    hashing %s (once: the digest is remembered)", path);
        r = sha256_file_hex(path, out);
        if (r < 0)
                return log_error_errno(r, "reading %s: %m", path);
        if (mkdir_p(dir, 0755) >= 0)
                (void)write_file_atomic(memo, out, 64, 0644);
        return 0;
}

int image_qcow2_virtual_size(const char *path, unsigned long long *ret)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned char h[32];
        unsigned long long v = 0;

        if (!f)
                return negative_errno();
        if (fread(h, 1, sizeof(h), f) != sizeof(h) || memcmp(h, "QFI\xfb", 4) != 0)
                return -EBADMSG;
        for (int i = 24; i < 32; i++) /* big-endian uint64 "size" field */
                v = (v << 8) | h[i];
        *ret = v;
        return 0;
}
