/* vgpuenv-plane-read: read an mdev vGPU's display plane the way QEMU's vfio
 * display gets it (hw/vfio/display.c), and write it as a PPM image.
 *
 *   vgpuenv-plane-read UUID OUT.ppm
 *
 * Runs on a node (verify-display uploads it), while no domain holds the
 * instance: it opens the instance's VFIO group and device, probes the plane
 * type (VFIO_DEVICE_QUERY_GFX_PLANE with PROBE|DMABUF, then PROBE|REGION),
 * turns the fake T4's scanout on (its vgpuenv/scanout attribute, what a
 * guest driver does), queries the primary plane and reads it: for DMABUF
 * the dma-buf from VFIO_DEVICE_GET_GFX_DMABUF, mapped (as a software GL
 * importer maps it); for REGION the plane's VFIO region, mapped. So the
 * table can show what the vGPU exports even where no GL display can import
 * a dma-buf. Links libc only; prints "key=value" lines, "error=" on failure
 * (exit 1), exit 2 for bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define XRGB8888 0x34325258 /* DRM_FORMAT_XRGB8888, "XR24" */

static int die(const char *what)
{
        printf("error=%s: %s\n", what, strerror(errno));
        return 1;
}

/* /dev/vfio/N of the instance's IOMMU group. */
static int group_path(const char *uuid, char *out, size_t len)
{
        char link[PATH_MAX], target[PATH_MAX];
        ssize_t n;

        snprintf(link, sizeof(link), "/sys/bus/mdev/devices/%s/iommu_group", uuid);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return -1;
        target[n] = 0;
        snprintf(out, len, "/dev/vfio/%s", strrchr(target, '/') + 1);
        return 0;
}

static void scanout(const char *uuid, const char *value)
{
        char p[PATH_MAX];
        FILE *f;

        snprintf(p, sizeof(p), "/sys/bus/mdev/devices/%s/vgpuenv/scanout", uuid);
        f = fopen(p, "w");
        if (!f)
                return; /* not the fake T4: a real vGPU's guest sets the mode */
        fputs(value, f);
        fclose(f);
}

static int write_ppm(const char *path, const uint8_t *px, uint32_t w, uint32_t h, uint32_t stride)
{
        FILE *f = fopen(path, "wb");
        uint8_t *row = malloc((size_t)w * 3);

        if (!f || !row) {
                free(row);
                if (f)
                        fclose(f);
                return -1;
        }
        fprintf(f, "P6\n%u %u\n255\n", w, h);
        for (uint32_t y = 0; y < h; y++) {
                const uint32_t *src = (const uint32_t *)(px + (size_t)y * stride);
                for (uint32_t x = 0; x < w; x++) {
                        row[x * 3] = (src[x] >> 16) & 0xff;
                        row[x * 3 + 1] = (src[x] >> 8) & 0xff;
                        row[x * 3 + 2] = src[x] & 0xff;
                }
                fwrite(row, 3, w, f);
        }
        free(row);
        return fclose(f);
}

/* The mapped plane: the dma-buf's, or the region's. */
static const uint8_t *map_plane(int dev, const struct vfio_device_gfx_plane_info *p, bool dmabuf,
                                size_t *ret_len)
{
        void *m;

        if (dmabuf) {
                uint32_t id = p->dmabuf_id;
                int fd = ioctl(dev, VFIO_DEVICE_GET_GFX_DMABUF, &id);
                if (fd < 0)
                        return NULL;
                printf("dmabuf-fd=%d\n", fd);
                off_t size = lseek(fd, 0, SEEK_END);
                if (size < (off_t)p->size)
                        return NULL;
                m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
                *ret_len = (size_t)size;
                close(fd); /* the mapping keeps the dma-buf */
        } else {
                struct vfio_region_info r = {.argsz = sizeof(r), .index = p->region_index};
                if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &r) < 0 || r.size < p->size)
                        return NULL;
                printf("region-index=%u\n", p->region_index);
                m = mmap(NULL, p->size, PROT_READ, MAP_SHARED, dev, (off_t)r.offset);
                *ret_len = p->size;
        }
        return m == MAP_FAILED ? NULL : m;
}

int main(int argc, char **argv)
{
        char gpath[PATH_MAX];
        int container, group, dev;

        if (argc != 3) {
                fprintf(stderr, "usage: vgpuenv-plane-read UUID OUT.ppm\n");
                return 2;
        }
        const char *uuid = argv[1], *out = argv[2];
        if (group_path(uuid, gpath, sizeof(gpath)) < 0)
                return die("no IOMMU group for the instance");
        container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        group = open(gpath, O_RDWR | O_CLOEXEC);
        if (container < 0 || group < 0)
                return die("cannot open /dev/vfio (is the instance in use by a domain?)");
        if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0 ||
            ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0)
                return die("cannot set up the VFIO container");
        dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, uuid);
        if (dev < 0)
                return die("VFIO_GROUP_GET_DEVICE_FD");

        /* What QEMU probes at device realize, in its order. */
        struct vfio_device_gfx_plane_info p = {
            .argsz = sizeof(p), .flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF};
        bool dmabuf = ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &p) == 0;
        if (!dmabuf) {
                p = (struct vfio_device_gfx_plane_info){.argsz = sizeof(p),
                                                        .flags = VFIO_GFX_PLANE_TYPE_PROBE |
                                                                 VFIO_GFX_PLANE_TYPE_REGION};
                if (ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &p) < 0)
                        return die("the device answers neither the DMABUF nor the REGION probe");
        }
        printf("display=%s\n", dmabuf ? "dmabuf" : "region");

        scanout(uuid, "1");
        p = (struct vfio_device_gfx_plane_info){.argsz = sizeof(p),
                                                .flags = dmabuf ? VFIO_GFX_PLANE_TYPE_DMABUF
                                                                : VFIO_GFX_PLANE_TYPE_REGION,
                                                .drm_plane_type = 1 /* DRM_PLANE_TYPE_PRIMARY */};
        if (ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &p) < 0)
                return die("VFIO_DEVICE_QUERY_GFX_PLANE");
        printf("format=0x%08x\nwidth=%u\nheight=%u\nstride=%u\nsize=%u\n", p.drm_format, p.width,
               p.height, p.stride, p.size);
        if (!p.drm_format || !p.size) {
                errno = ENODATA;
                return die("the plane is empty (scanout off?)");
        }
        if (p.drm_format != XRGB8888 || p.stride < p.width * 4 ||
            (uint64_t)p.stride * p.height > p.size) {
                errno = EINVAL;
                return die("the plane is not a linear XRGB8888 image this tool can read");
        }
        size_t len = 0;
        const uint8_t *px = map_plane(dev, &p, dmabuf, &len);
        if (!px)
                return die(dmabuf ? "cannot get and map the dma-buf" : "cannot map the region");
        if (write_ppm(out, px, p.width, p.height, p.stride) < 0)
                return die("cannot write the image");
        printf("ppm=%s\n", out);
        munmap((void *)px, len);
        scanout(uuid, "0");
        close(dev);
        close(group);
        close(container);
        return 0;
}
