/* Reading what e2e/display/node-check.sh printed: "key=value" facts, and
 * libvirt's and QEMU's own words ("virsh: ..." and "qemu-log: ..." lines),
 * which the table quotes verbatim as the observation. Also the PPM header
 * of the vGPU console's screendump. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "e2e/display/display.h"

/* Next line of *p as a fresh string, advancing *p; NULL at the end. */
static char *next_line(const char **p)
{
        const char *s = *p, *e;

        if (!s || !*s)
                return NULL;
        e = strchr(s, '\n');
        *p = e ? e + 1 : s + strlen(s);
        return strndup(s, e ? (size_t)(e - s) : strlen(s));
}

char *kv_get(const char *out, const char *key)
{
        size_t k = strlen(key);
        const char *p = out;
        char *l;

        while ((l = next_line(&p))) {
                if (strneq(l, key, k) && l[k] == '=') {
                        char *v = strdup(l + k + 1);
                        free(l);
                        return v;
                }
                free(l);
        }
        return NULL;
}

/* QEMU's lines carry an ISO timestamp and repeat the whole -device JSON
 * before the message; the table shows the message:
 * "qemu-system-x86_64: vfio UUID: vfio-display-dmabuf: opengl not available". */
static char *tidy(const char *l)
{
        const char *s = l, *dev;
        size_t n = strlen(l);

        /* 2026-11-21T13:06:10.306227Z */
        if (n > 28 && isdigit((unsigned char)l[0]) && l[4] == '-' && l[10] == 'T' &&
            strchr(l, ' ') && strchr(l, 'Z') && strchr(l, 'Z') < strchr(l, ' '))
                s = strchr(l, ' ') + 1;
        dev = strstr(s, "-device {");
        if (dev) {
                const char *end = strstr(dev, "}: ");
                if (end)
                        return strdup_printf("%.*s%s", (int)(dev - s), s, end + 3);
        }
        return strdup(s);
}

static char *line_with_prefix(const char *out, const char *prefix, const char *needle)
{
        const char *p = out;
        char *l;

        while ((l = next_line(&p))) {
                if (startswith(l, prefix) && strstr(l, needle)) {
                        char *v = tidy(l + strlen(prefix));
                        free(l);
                        return v;
                }
                free(l);
        }
        return NULL;
}

char *line_with(const char *out, const char *needle)
{
        /* QEMU's own log first: libvirt's error repeats it, sometimes cut. */
        char *v = line_with_prefix(out, "qemu-log: ", needle);

        return v ? v : line_with_prefix(out, "virsh: ", needle);
}

/* libvirt's own notes in the QEMU log start with a timestamp
 * ("2026-11-21 13:00:00.000+0000: starting up ..."). */
static bool is_libvirt_note(const char *s)
{
        return isdigit((unsigned char)s[0]) && strlen(s) > 20 && s[4] == '-' && s[10] == ' ';
}

char *start_error_line(const char *out)
{
        const char *p = out;
        char *l, *qemu_err = NULL, *virsh_err = NULL;

        /* The last line QEMU wrote that is neither libvirt's timestamped note
         * nor a warning is why it stopped. */
        while ((l = next_line(&p))) {
                if (startswith(l, "qemu-log: ") && l[10] && !is_libvirt_note(l + 10) &&
                    !strstr(l, ": warning: ")) {
                        free(qemu_err);
                        qemu_err = tidy(l + 10);
                } else if (startswith(l, "virsh: error: ") &&
                           !startswith(l, "virsh: error: Failed to start domain")) {
                        free(virsh_err);
                        virsh_err = tidy(l + 14);
                }
                free(l);
        }
        if (qemu_err) {
                free(virsh_err);
                return qemu_err;
        }
        return virsh_err;
}

/* PPM header fields are separated by whitespace; '#' starts a comment. */
static int ppm_number(const char *buf, size_t size, size_t *pos, unsigned *ret)
{
        unsigned long v = 0;
        size_t i = *pos, digits = 0;

        for (;;) {
                while (i < size && isspace((unsigned char)buf[i]))
                        i++;
                if (i < size && buf[i] == '#') {
                        while (i < size && buf[i] != '\n')
                                i++;
                        continue;
                }
                break;
        }
        while (i < size && isdigit((unsigned char)buf[i]) && digits < 6) {
                v = v * 10 + (unsigned long)(buf[i] - '0');
                i++;
                digits++;
        }
        if (digits == 0 || (i < size && isdigit((unsigned char)buf[i])))
                return -EBADMSG;
        *pos = i;
        *ret = (unsigned)v;
        return 0;
}

int ppm_parse_header(const char *buf, size_t size, unsigned *ret_w, unsigned *ret_h,
                     size_t *ret_data_off)
{
        unsigned w, h, maxval;
        size_t pos = 2;

        if (size < 2 || buf[0] != 'P' || buf[1] != '6')
                return -EBADMSG;
        if (ppm_number(buf, size, &pos, &w) < 0 || ppm_number(buf, size, &pos, &h) < 0 ||
            ppm_number(buf, size, &pos, &maxval) < 0)
                return -EBADMSG;
        /* Exactly one whitespace byte separates the header from the pixels. */
        if (w == 0 || h == 0 || maxval == 0 || maxval > 255 || pos >= size ||
            !isspace((unsigned char)buf[pos]))
                return -EBADMSG;
        pos++;
        if (size - pos < (size_t)w * h * 3)
                return -EBADMSG;
        *ret_w = w;
        *ret_h = h;
        *ret_data_off = pos;
        return 0;
}

/* The fake vGPU's test pattern (provision/vgpu/module/vgpuenv_t4.c,
 * vt4_pattern_pixel): eight colour bars over the top two thirds, a grey ramp
 * below, as 0xRRGGBB. */
static unsigned pattern_pixel(unsigned x, unsigned y, unsigned w, unsigned h)
{
        static const unsigned bars[8] = {0xffffff, 0xffff00, 0x00ffff, 0x00ff00,
                                         0xff00ff, 0xff0000, 0x0000ff, 0x000000};
        unsigned v;

        if (y < h * 2 / 3)
                return bars[x * 8 / w];
        v = x * 255 / (w - 1);
        return v << 16 | v << 8 | v;
}

int vgpu_pattern_match(const char *buf, size_t size, unsigned *ret_hits, unsigned *ret_points)
{
        unsigned w, h, hits = 0, n = 0;
        size_t off;
        int r = ppm_parse_header(buf, size, &w, &h, &off);

        if (r < 0)
                return r;
        if (w < 16 || h < 16)
                return -EBADMSG;
        /* The middle of each bar, and eight points along the ramp. */
        for (unsigned row = 0; row < 2; row++)
                for (unsigned k = 0; k < 8; k++) {
                        unsigned x = (2 * k + 1) * w / 16, y = row == 0 ? h / 3 : h * 5 / 6;
                        unsigned want = pattern_pixel(x, y, w, h);
                        const unsigned char *p =
                            (const unsigned char *)buf + off + ((size_t)y * w + x) * 3;
                        bool same = true;
                        for (int c = 0; c < 3; c++) {
                                int e = (int)((want >> (16 - 8 * c)) & 0xff);
                                same = same && abs((int)p[c] - e) <= 3;
                        }
                        hits += same;
                        n++;
                }
        *ret_hits = hits;
        *ret_points = n;
        return 0;
}
