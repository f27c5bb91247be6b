// SPDX-License-Identifier: GPL-2.0
/*
 * vgpuenv_t4: a node's NVIDIA Tesla T4 with the vGPU manager, emulated, for
 * KubeVirt's MediatedDevices tests on machines without an NVIDIA GPU.
 *
 * This file is kernel code and follows the kernel's coding style (this
 * folder's .clang-format), unlike the rest of vgpuenv.
 *
 * What KubeVirt reads and does (kubevirt/kubevirt d923fdb,
 * tests/mdev_configuration_allocation_test.go and
 * pkg/virt-handler/device-manager/mediated_devices_types.go):
 *  - the types under /sys/class/mdev_bus/<parent>/mdev_supported_types:
 *    nvidia-222 named "GRID T4-1B" and nvidia-223 named "GRID T4-2B", with
 *    NVIDIA's description format, whose max_instance= the suite sums up as
 *    the number of mdevs virt-handler must create;
 *  - virt-handler writes as many UUIDs into <type>/create as
 *    available_instances says, one type per parent card;
 *  - in the guest, "grep -c 10de1eb8 /proc/bus/pci/devices";
 *  - the generic spec takes the first /sys/class/mdev_bus/0000* parent,
 *    unbinds <its address with dd.f replaced by 00.0> from its driver,
 *    expects the parent to vanish, binds it back and expects it again.
 *
 * So the parent is a PCI function bound to this PCI driver: QEMU's
 * pci-testdev (1b36:0005, which no in-tree driver claims), placed by
 * vgpuenv's providers at function 00.0 behind a PCIe root port of each VM
 * node. A host without one gets virtual parents (virtual_parents=N: platform
 * devices "nvidia", or "nvidia.0".. for several), on which the generic spec
 * cannot pass.
 *
 * The drivers of both kinds of parent are named "nvidia", like NVIDIA's own:
 * the mdev core names a type "<parent's driver>-<sysfs_name>", and KubeVirt
 * asks for nvidia-222; the generic spec also derives the resource name
 * "nvidia.com/GRID_T4-1B" from the driver's name. So this module cannot be
 * loaded next to NVIDIA's driver (a node with a real vGPU uses that one).
 *
 * Like a real time-sliced T4, a parent hosts one vGPU type at a time:
 * available_instances of the other type reads 0 while instances exist.
 *
 * Each instance is a PCI device 10de:1eb8 (subsystem 10de:12a2, class 3D
 * controller) with BAR0 (registers) and BAR1 (the framebuffer, pages
 * allocated on first touch). Its display, chosen by the display= module
 * parameter when the instance is created:
 *  - dmabuf: answers the DMABUF plane probe and exports the framebuffer as
 *    dma-bufs (VFIO_DEVICE_GET_GFX_DMABUF), the path of real DMABUF vGPUs,
 *    for which QEMU needs a GL display;
 *  - region: refuses the DMABUF probe and offers the framebuffer as a
 *    region plane (BAR1), which QEMU shows with no GL at all.
 * In both the scanout is off after reset, so QEMU shows the domain's ramfb
 * while it boots (KubeVirt's display=on ramfb=on). Writing 1 to the
 * instance's vgpuenv/scanout attribute (or to register VT4_REG_SCANOUT, as a
 * guest driver would) turns the plane on; it shows the framebuffer, which
 * reset fills with a test pattern (eight colour bars over a grey ramp) and
 * the guest may overwrite through BAR1. vgpuenv/dmabufs counts the dma-bufs
 * exported, so a test can see that QEMU took the plane.
 *
 * The mdev and vfio interfaces were learnt from the Linux 6.1 headers
 * (include/linux/mdev.h, vfio.h, uapi/linux/vfio.h) and the samples in
 * samples/vfio-mdev/. Interfaces that changed after 6.1 are detected from
 * the kernel's own headers by Kbuild (VT4_HAVE_*), because distribution
 * kernels (RHEL 9's 5.14) carry backports that version numbers do not show.
 */
#include <linux/device.h>
#include <linux/dma-buf.h>
#include <linux/highmem.h>
#include <linux/kernel.h>
#include <linux/mdev.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>
#include <drm/drm_fourcc.h>

#if !IS_ENABLED(CONFIG_VFIO_MDEV)
#error "vgpuenv_t4 needs a kernel configured with CONFIG_VFIO_MDEV"
#endif
#ifndef VT4_HAVE_MDEV_PARENT
#error "vgpuenv_t4 needs the mdev API of Linux 6.1 or later (mdev_register_parent() in <linux/mdev.h>), which these kernel headers do not have"
#endif

#define VT4_NAME "vgpuenv-t4"
#define VT4_PARENT_DRIVER "nvidia"

/* vfio-pci's layout of the device file: region index in the top bits. */
#define VT4_OFFSET_SHIFT 40
#define VT4_INDEX_TO_OFFSET(i) ((u64)(i) << VT4_OFFSET_SHIFT)
#define VT4_OFFSET_MASK ((1ULL << VT4_OFFSET_SHIFT) - 1)

#define VT4_CONFIG_SIZE 256
#define VT4_BAR0_SIZE (16U << 20) /* a T4's register BAR */
#define VT4_BAR1_SIZE (32U << 20) /* framebuffer window */
#define VT4_FB_PAGES (VT4_BAR1_SIZE >> PAGE_SHIFT)

/* Our registers in BAR0, away from offset 0, where NVIDIA's NV_PMC_BOOT_0
 * is: it reads 0, so a guest's nouveau reports an unknown chipset and lets
 * the device be. */
#define VT4_REG_MAGIC 0x1000 /* "VGT4" */
#define VT4_REG_SCANOUT 0x1004 /* bit 0: plane on */
#define VT4_REG_WIDTH 0x1008
#define VT4_REG_HEIGHT 0x100c
#define VT4_REG_STRIDE 0x1010 /* read-only */
#define VT4_REG_FORMAT 0x1014 /* read-only: DRM fourcc */
#define VT4_MAGIC 0x34544756

#define VT4_DEFAULT_WIDTH 1024
#define VT4_DEFAULT_HEIGHT 768
#define VT4_MIN_SIDE 64
#define VT4_MAX_WIDTH 2560
#define VT4_MAX_HEIGHT 1600

/* ---- module parameters --------------------------------------------------- */

enum vt4_display { VT4_DISPLAY_DMABUF, VT4_DISPLAY_REGION };
static const char *const vt4_display_names[] = { "dmabuf", "region" };
static int vt4_display = VT4_DISPLAY_DMABUF;

static int vt4_display_set(const char *val, const struct kernel_param *kp)
{
	int i = sysfs_match_string(vt4_display_names, val);

	if (i < 0) {
		pr_err(VT4_NAME ": display=%s: must be dmabuf or region\n",
		       val);
		return -EINVAL;
	}
	WRITE_ONCE(*(int *)kp->arg, i);
	return 0;
}

static int vt4_display_get(char *buf, const struct kernel_param *kp)
{
	return sprintf(buf, "%s\n",
		       vt4_display_names[READ_ONCE(*(int *)kp->arg)]);
}

static const struct kernel_param_ops vt4_display_ops = {
	.set = vt4_display_set,
	.get = vt4_display_get,
};

/* Writable at run time: an instance keeps the mode it was created with. */
module_param_cb(display, &vt4_display_ops, &vt4_display, 0644);
MODULE_PARM_DESC(display,
		 "display of new instances: dmabuf (default) or region");

static unsigned int vt4_virtual_parents;
module_param_named(virtual_parents, vt4_virtual_parents, uint, 0444);
MODULE_PARM_DESC(
	virtual_parents,
	"parents without a PCI function, named nvidia (0-4, default 0)");
#define VT4_MAX_VIRTUAL_PARENTS 4

/* ---- types --------------------------------------------------------------- */

struct vt4_type_info {
	const char *sysfs_name;
	const char *pretty_name;
	unsigned int framebuffer_mb;
	unsigned int max_instances;
};

/* A T4 has 16 GB: 16 instances of 1 GB or 8 of 2 GB. The mdev core puts
 * the driver's name in front: nvidia-222, nvidia-223. */
static const struct vt4_type_info vt4_types[] = {
	{ "222", "GRID T4-1B", 1024, 16 },
	{ "223", "GRID T4-2B", 2048, 8 },
};
#define VT4_NR_TYPES ARRAY_SIZE(vt4_types)

struct vt4_parent;

struct vt4_type {
	struct mdev_type type;
	struct vt4_parent *parent;
	unsigned int index;
};

struct vt4_parent {
	struct mdev_parent mdev;
	struct device *dev;
	struct mutex lock; /* instances, active_type */
	unsigned int instances;
	int active_type; /* -1 while there is no instance */
	struct vt4_type types[VT4_NR_TYPES];
	struct mdev_type *type_ptrs[VT4_NR_TYPES];
};

static struct vt4_type *to_vt4_type(struct mdev_type *mtype)
{
	return container_of(mtype, struct vt4_type, type);
}

/* ---- instances ----------------------------------------------------------- */

struct vt4_state {
	struct vfio_device vdev;
	struct vt4_type *type;
	enum vt4_display display;
	struct mutex lock; /* everything below */
	u8 config[VT4_CONFIG_SIZE];
	bool scanout;
	u32 width, height;
	u32 plane_id; /* changes with the mode, so QEMU re-imports */
	struct page **pages; /* VT4_FB_PAGES, allocated on first touch */
	unsigned long dmabufs; /* exported so far: shows QEMU took the plane */
};

static struct vt4_state *to_vt4_state(struct vfio_device *vdev)
{
	return container_of(vdev, struct vt4_state, vdev);
}

static u32 vt4_stride(const struct vt4_state *st)
{
	return st->width * 4;
}

static u32 vt4_plane_size(const struct vt4_state *st)
{
	return PAGE_ALIGN(vt4_stride(st) * st->height);
}

/* The test pattern, XRGB8888: eight colour bars over the top two thirds, a
 * grey ramp below. e2e/display/ checks screendumps against this formula. */
static u32 vt4_pattern_pixel(u32 x, u32 y, u32 w, u32 h)
{
	static const u32 bars[8] = { 0xffffff, 0xffff00, 0x00ffff, 0x00ff00,
				     0xff00ff, 0xff0000, 0x0000ff, 0x000000 };
	u32 v;

	if (y < h * 2 / 3)
		return bars[x * 8 / w];
	v = x * 255 / (w - 1);
	return v << 16 | v << 8 | v;
}

static struct page *vt4_fb_page(struct vt4_state *st, pgoff_t i)
{
	lockdep_assert_held(&st->lock);
	if (i >= VT4_FB_PAGES)
		return NULL;
	if (!st->pages[i])
		st->pages[i] = alloc_page(GFP_HIGHUSER | __GFP_ZERO);
	return st->pages[i];
}

static void vt4_fb_free(struct vt4_state *st)
{
	pgoff_t i;

	lockdep_assert_held(&st->lock);
	for (i = 0; i < VT4_FB_PAGES; i++) {
		if (st->pages[i])
			put_page(st->pages[i]);
		st->pages[i] = NULL;
	}
}

static int vt4_draw_pattern(struct vt4_state *st)
{
	u32 stride_px = st->width, total = st->width * st->height;
	pgoff_t n = DIV_ROUND_UP(total * 4, PAGE_SIZE), i;

	lockdep_assert_held(&st->lock);
	for (i = 0; i < n; i++) {
		struct page *pg = vt4_fb_page(st, i);
		u32 *px, k, first = i * (PAGE_SIZE / 4);

		if (!pg)
			return -ENOMEM;
		px = kmap_local_page(pg);
		for (k = 0; k < PAGE_SIZE / 4 && first + k < total; k++)
			px[k] = vt4_pattern_pixel((first + k) % stride_px,
						  (first + k) / stride_px,
						  st->width, st->height);
		kunmap_local(px);
	}
	return 0;
}

static int vt4_reset(struct vt4_state *st)
{
	lockdep_assert_held(&st->lock);
	st->scanout = false;
	if (st->width != VT4_DEFAULT_WIDTH ||
	    st->height != VT4_DEFAULT_HEIGHT) {
		st->width = VT4_DEFAULT_WIDTH;
		st->height = VT4_DEFAULT_HEIGHT;
		st->plane_id++;
	}
	return vt4_draw_pattern(st);
}

/* ---- PCI configuration space --------------------------------------------- */

static void vt4_put16(u8 *p, u16 v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void vt4_put32(u8 *p, u32 v)
{
	vt4_put16(p, v & 0xffff);
	vt4_put16(p + 2, v >> 16);
}

static u32 vt4_get32(const u8 *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (u32)p[3] << 24;
}

static void vt4_config_init(struct vt4_state *st)
{
	u8 *c = st->config;

	memset(c, 0, VT4_CONFIG_SIZE);
	vt4_put16(c + PCI_VENDOR_ID, PCI_VENDOR_ID_NVIDIA);
	vt4_put16(c + PCI_DEVICE_ID, 0x1eb8); /* TU104GL [Tesla T4] */
	c[PCI_REVISION_ID] = 0xa1;
	vt4_put16(c + PCI_CLASS_DEVICE, PCI_CLASS_DISPLAY_3D);
	c[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	vt4_put32(c + PCI_BASE_ADDRESS_0,
		  PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_32);
	vt4_put32(c + PCI_BASE_ADDRESS_1,
		  PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64 |
			  PCI_BASE_ADDRESS_MEM_PREFETCH);
	vt4_put16(c + PCI_SUBSYSTEM_VENDOR_ID, PCI_VENDOR_ID_NVIDIA);
	vt4_put16(c + PCI_SUBSYSTEM_ID, 0x12a2); /* Tesla T4 */
	/* No interrupt pin and no capabilities: nothing for a guest to
	 * drive but the registers and the framebuffer. */
}

/* After a write: BAR address bits below the size read as 0 (that is how
 * sizing works), type bits keep their value. */
static void vt4_config_fixup_bars(struct vt4_state *st)
{
	u8 *c = st->config;
	u32 v;

	v = vt4_get32(c + PCI_BASE_ADDRESS_0) & ~(VT4_BAR0_SIZE - 1);
	vt4_put32(c + PCI_BASE_ADDRESS_0, v | PCI_BASE_ADDRESS_MEM_TYPE_32);
	v = vt4_get32(c + PCI_BASE_ADDRESS_1) & ~(VT4_BAR1_SIZE - 1);
	vt4_put32(c + PCI_BASE_ADDRESS_1,
		  v | PCI_BASE_ADDRESS_MEM_TYPE_64 |
			  PCI_BASE_ADDRESS_MEM_PREFETCH);
	/* PCI_BASE_ADDRESS_2: the upper half of BAR1, all bits writable. */
}

static bool vt4_config_writable(unsigned int off)
{
	return (off >= PCI_COMMAND && off < PCI_COMMAND + 2) ||
	       (off >= PCI_BASE_ADDRESS_0 && off < PCI_BASE_ADDRESS_3);
}

static void vt4_config_write(struct vt4_state *st, unsigned int off,
			     const u8 *buf, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (vt4_config_writable(off + i))
			st->config[off + i] = buf[i];
	vt4_config_fixup_bars(st);
}

/* ---- BAR0 registers ------------------------------------------------------ */

static u32 vt4_reg_read(struct vt4_state *st, u32 reg)
{
	switch (reg) {
	case VT4_REG_MAGIC:
		return VT4_MAGIC;
	case VT4_REG_SCANOUT:
		return st->scanout;
	case VT4_REG_WIDTH:
		return st->width;
	case VT4_REG_HEIGHT:
		return st->height;
	case VT4_REG_STRIDE:
		return vt4_stride(st);
	case VT4_REG_FORMAT:
		return DRM_FORMAT_XRGB8888;
	}
	return 0;
}

static void vt4_set_mode(struct vt4_state *st, u32 w, u32 h)
{
	if (w < VT4_MIN_SIDE || w > VT4_MAX_WIDTH || h < VT4_MIN_SIDE ||
	    h > VT4_MAX_HEIGHT || (w == st->width && h == st->height))
		return;
	st->width = w;
	st->height = h;
	st->plane_id++;
}

static void vt4_reg_write(struct vt4_state *st, u32 reg, u32 val)
{
	switch (reg) {
	case VT4_REG_SCANOUT:
		st->scanout = val & 1;
		break;
	case VT4_REG_WIDTH:
		vt4_set_mode(st, val, st->height);
		break;
	case VT4_REG_HEIGHT:
		vt4_set_mode(st, st->width, val);
		break;
	}
}

/* ---- read and write on the device file ----------------------------------- */

/*
 * One access of at most one register or one page, copied through buf so no
 * user page fault happens under st->lock (a fault on a mapping of our own
 * BAR1 would take it again). Returns the bytes handled or -errno.
 */
static ssize_t vt4_access(struct vt4_state *st, u64 pos, u8 *buf, size_t count,
			  bool write)
{
	unsigned int index = pos >> VT4_OFFSET_SHIFT;
	u64 off = pos & VT4_OFFSET_MASK;
	size_t n;

	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		if (off >= VT4_CONFIG_SIZE)
			return -EINVAL;
		n = min_t(size_t, count, VT4_CONFIG_SIZE - off);
		if (write)
			vt4_config_write(st, off, buf, n);
		else
			memcpy(buf, st->config + off, n);
		return n;
	case VFIO_PCI_BAR0_REGION_INDEX: {
		u32 reg = off & ~3ULL, shift = (off & 3) * 8;
		u32 v;

		if (off >= VT4_BAR0_SIZE)
			return -EINVAL;
		n = min_t(size_t, count, 4 - (off & 3));
		if (write) {
			/* Only whole aligned registers are writable. */
			if (n == 4)
				vt4_reg_write(st, reg, vt4_get32(buf));
		} else {
			v = vt4_reg_read(st, reg) >> shift;
			memcpy(buf, &v, n); /* little-endian host */
		}
		return n;
	}
	case VFIO_PCI_BAR1_REGION_INDEX: {
		pgoff_t pg = off >> PAGE_SHIFT;
		size_t in_page = off & ~PAGE_MASK;
		struct page *page;
		u8 *p;

		if (off >= VT4_BAR1_SIZE)
			return -EINVAL;
		n = min_t(size_t, count, PAGE_SIZE - in_page);
		if (!write && !st->pages[pg]) {
			memset(buf, 0, n);
			return n;
		}
		page = vt4_fb_page(st, pg);
		if (!page)
			return -ENOMEM;
		p = kmap_local_page(page);
		if (write)
			memcpy(p + in_page, buf, n);
		else
			memcpy(buf, p + in_page, n);
		kunmap_local(p);
		return n;
	}
	}
	return -EINVAL;
}

static ssize_t vt4_rw(struct vfio_device *vdev, char __user *ubuf, size_t count,
		      loff_t *ppos, bool write)
{
	struct vt4_state *st = to_vt4_state(vdev);
	size_t done = 0;
	u8 small[8], *buf = small;
	ssize_t ret = 0;

	/* Register accesses (most of them) need no allocation. */
	if (count > sizeof(small)) {
		buf = kmalloc(PAGE_SIZE, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
	}
	while (done < count) {
		size_t want = min_t(size_t, count - done,
				    buf == small ? sizeof(small) : PAGE_SIZE);

		if (write && copy_from_user(buf, ubuf + done, want)) {
			ret = -EFAULT;
			break;
		}
		mutex_lock(&st->lock);
		ret = vt4_access(st, *ppos, buf, want, write);
		mutex_unlock(&st->lock);
		if (ret <= 0)
			break;
		if (!write && copy_to_user(ubuf + done, buf, ret)) {
			ret = -EFAULT;
			break;
		}
		done += ret;
		*ppos += ret;
	}
	if (buf != small)
		kfree(buf);
	return done ? done : ret;
}

static ssize_t vt4_read(struct vfio_device *vdev, char __user *buf,
			size_t count, loff_t *ppos)
{
	return vt4_rw(vdev, buf, count, ppos, false);
}

static ssize_t vt4_write(struct vfio_device *vdev, const char __user *buf,
			 size_t count, loff_t *ppos)
{
	return vt4_rw(vdev, (char __user *)buf, count, ppos, true);
}

/* ---- mmap of BAR1 -------------------------------------------------------- */

static vm_fault_t vt4_bar1_fault(struct vm_fault *vmf)
{
	struct vt4_state *st = vmf->vma->vm_private_data;
	pgoff_t pg = (vmf->address - vmf->vma->vm_start) >> PAGE_SHIFT;
	struct page *page;

	mutex_lock(&st->lock);
	page = vt4_fb_page(st, pg);
	if (page)
		get_page(page);
	mutex_unlock(&st->lock);
	if (!page)
		return VM_FAULT_SIGBUS;
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct vt4_bar1_vm_ops = {
	.fault = vt4_bar1_fault,
};

static int vt4_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	u64 base =
		VT4_INDEX_TO_OFFSET(VFIO_PCI_BAR1_REGION_INDEX) >> PAGE_SHIFT;

	/* Only the whole framebuffer window, from its start, shared. */
	if (vma->vm_pgoff != base || vma->vm_end <= vma->vm_start ||
	    vma->vm_end - vma->vm_start > VT4_BAR1_SIZE ||
	    !(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	vma->vm_ops = &vt4_bar1_vm_ops;
	vma->vm_private_data = to_vt4_state(vdev);
	return 0;
}

/* ---- dma-bufs of the framebuffer ----------------------------------------- */

/*
 * Each VFIO_DEVICE_GET_GFX_DMABUF exports a new dma-buf holding its own page
 * references, so a dma-buf never points back at the instance: QEMU may keep
 * it after closing the device, and no reference count is shared.
 */
struct vt4_export {
	struct page **pages;
	pgoff_t n;
};

static struct sg_table *vt4_map_dmabuf(struct dma_buf_attachment *at,
				       enum dma_data_direction dir)
{
	struct vt4_export *e = at->dmabuf->priv;
	struct sg_table *sgt;
	int ret;

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	ret = sg_alloc_table_from_pages(sgt, e->pages, e->n, 0,
					e->n << PAGE_SHIFT, GFP_KERNEL);
	if (ret)
		goto err_free;
	ret = dma_map_sgtable(at->dev, sgt, dir, 0);
	if (ret)
		goto err_table;
	return sgt;

err_table:
	sg_free_table(sgt);
err_free:
	kfree(sgt);
	return ERR_PTR(ret);
}

static void vt4_unmap_dmabuf(struct dma_buf_attachment *at,
			     struct sg_table *sgt, enum dma_data_direction dir)
{
	dma_unmap_sgtable(at->dev, sgt, dir, 0);
	sg_free_table(sgt);
	kfree(sgt);
}

static void vt4_release_dmabuf(struct dma_buf *buf)
{
	struct vt4_export *e = buf->priv;
	pgoff_t i;

	for (i = 0; i < e->n; i++)
		put_page(e->pages[i]);
	kvfree(e->pages);
	kfree(e);
}

static vm_fault_t vt4_dmabuf_fault(struct vm_fault *vmf)
{
	struct vt4_export *e = vmf->vma->vm_private_data;

	if (vmf->pgoff >= e->n)
		return VM_FAULT_SIGBUS;
	vmf->page = e->pages[vmf->pgoff];
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct vt4_dmabuf_vm_ops = {
	.fault = vt4_dmabuf_fault,
};

static int vt4_mmap_dmabuf(struct dma_buf *buf, struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	vma->vm_ops = &vt4_dmabuf_vm_ops;
	vma->vm_private_data = buf->priv;
	return 0;
}

static const struct dma_buf_ops vt4_dmabuf_ops = {
	.map_dma_buf = vt4_map_dmabuf,
	.unmap_dma_buf = vt4_unmap_dmabuf,
	.release = vt4_release_dmabuf,
	.mmap = vt4_mmap_dmabuf,
};

static int vt4_get_dmabuf(struct vt4_state *st, u32 id)
{
	DEFINE_DMA_BUF_EXPORT_INFO(info);
	struct vt4_export *e;
	struct dma_buf *buf;
	pgoff_t i;
	int fd;

	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;
	mutex_lock(&st->lock);
	if (st->display != VT4_DISPLAY_DMABUF || !st->scanout ||
	    id != st->plane_id) {
		mutex_unlock(&st->lock);
		kfree(e);
		return -ENOENT;
	}
	e->n = vt4_plane_size(st) >> PAGE_SHIFT;
	e->pages = kvcalloc(e->n, sizeof(*e->pages), GFP_KERNEL);
	for (i = 0; e->pages && i < e->n; i++) {
		e->pages[i] = vt4_fb_page(st, i);
		if (!e->pages[i])
			break;
		get_page(e->pages[i]);
	}
	mutex_unlock(&st->lock);
	if (!e->pages || i < e->n)
		goto err_pages;

	info.ops = &vt4_dmabuf_ops;
	info.size = e->n << PAGE_SHIFT;
	info.flags = O_RDWR;
	info.priv = e;
	buf = dma_buf_export(&info);
	if (IS_ERR(buf)) {
		i = e->n;
		fd = PTR_ERR(buf);
		goto err_put;
	}
	fd = dma_buf_fd(buf, O_CLOEXEC);
	if (fd < 0) {
		dma_buf_put(buf); /* releases e */
		return fd;
	}
	mutex_lock(&st->lock);
	st->dmabufs++;
	mutex_unlock(&st->lock);
	return fd;

err_pages:
	fd = -ENOMEM;
err_put:
	while (e->pages && i > 0)
		put_page(e->pages[--i]);
	kvfree(e->pages);
	kfree(e);
	return fd;
}

/* ---- ioctls -------------------------------------------------------------- */

static int vt4_query_plane(struct vt4_state *st,
			   struct vfio_device_gfx_plane_info *plane)
{
	u32 mine = st->display == VT4_DISPLAY_DMABUF
			   ? VFIO_GFX_PLANE_TYPE_DMABUF
			   : VFIO_GFX_PLANE_TYPE_REGION;

	/* The probe QEMU makes at device realize decides which display it
	 * builds: answer only the one of this instance's mode. */
	if (plane->flags & VFIO_GFX_PLANE_TYPE_PROBE)
		return plane->flags == (VFIO_GFX_PLANE_TYPE_PROBE | mine)
			       ? 0
			       : -EINVAL;
	if (plane->flags != mine)
		return -EINVAL;

	plane->drm_format = 0;
	plane->drm_format_mod = DRM_FORMAT_MOD_LINEAR;
	plane->width = 0;
	plane->height = 0;
	plane->stride = 0;
	plane->size = 0;
	plane->x_pos = 0;
	plane->y_pos = 0;
	plane->x_hot = 0;
	plane->y_hot = 0;
	plane->region_index = 0;

	mutex_lock(&st->lock);
	/* With the scanout off, an empty plane makes QEMU show the ramfb. A
	 * DMABUF display asks for the primary plane (DRM_PLANE_TYPE_PRIMARY,
	 * 1) and the cursor (2), which there is none of; QEMU's region display
	 * leaves the type 0, and a region display has one plane anyway. */
	if (st->scanout &&
	    (st->display == VT4_DISPLAY_REGION || plane->drm_plane_type == 1)) {
		plane->drm_format = DRM_FORMAT_XRGB8888;
		plane->width = st->width;
		plane->height = st->height;
		plane->stride = vt4_stride(st);
		plane->size = vt4_plane_size(st);
		if (st->display == VT4_DISPLAY_DMABUF)
			plane->dmabuf_id = st->plane_id;
		else
			plane->region_index = VFIO_PCI_BAR1_REGION_INDEX;
	}
	mutex_unlock(&st->lock);
	return 0;
}

static int vt4_region_info(struct vfio_region_info *info)
{
	switch (info->index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		info->size = VT4_CONFIG_SIZE;
		info->flags = VFIO_REGION_INFO_FLAG_READ |
			      VFIO_REGION_INFO_FLAG_WRITE;
		break;
	case VFIO_PCI_BAR0_REGION_INDEX:
		info->size = VT4_BAR0_SIZE;
		info->flags = VFIO_REGION_INFO_FLAG_READ |
			      VFIO_REGION_INFO_FLAG_WRITE;
		break;
	case VFIO_PCI_BAR1_REGION_INDEX:
		info->size = VT4_BAR1_SIZE;
		info->flags = VFIO_REGION_INFO_FLAG_READ |
			      VFIO_REGION_INFO_FLAG_WRITE |
			      VFIO_REGION_INFO_FLAG_MMAP;
		break;
	default:
		if (info->index >= VFIO_PCI_NUM_REGIONS)
			return -EINVAL;
		info->size = 0;
		info->flags = 0;
	}
	info->offset = VT4_INDEX_TO_OFFSET(info->index);
	info->cap_offset = 0;
	return 0;
}

static long vt4_ioctl(struct vfio_device *vdev, unsigned int cmd,
		      unsigned long arg)
{
	struct vt4_state *st = to_vt4_state(vdev);
	void __user *uarg = (void __user *)arg;
	unsigned long minsz;
	int ret;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info info;

		minsz = offsetofend(struct vfio_device_info, num_irqs);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
		info.num_regions = VFIO_PCI_NUM_REGIONS;
		info.num_irqs = VFIO_PCI_NUM_IRQS;
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_REGION_INFO: {
		struct vfio_region_info info;

		minsz = offsetofend(struct vfio_region_info, offset);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz)
			return -EINVAL;
		ret = vt4_region_info(&info);
		if (ret)
			return ret;
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info info;

		minsz = offsetofend(struct vfio_irq_info, count);
		if (copy_from_user(&info, uarg, minsz))
			return -EFAULT;
		if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS)
			return -EINVAL;
		info.flags = 0;
		info.count = 0;
		return copy_to_user(uarg, &info, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_SET_IRQS:
		return -EINVAL;
	case VFIO_DEVICE_RESET:
		mutex_lock(&st->lock);
		ret = vt4_reset(st);
		mutex_unlock(&st->lock);
		return ret;
	case VFIO_DEVICE_QUERY_GFX_PLANE: {
		struct vfio_device_gfx_plane_info plane;

		minsz = offsetofend(struct vfio_device_gfx_plane_info,
				    region_index);
		if (copy_from_user(&plane, uarg, minsz))
			return -EFAULT;
		if (plane.argsz < minsz)
			return -EINVAL;
		ret = vt4_query_plane(st, &plane);
		if (ret)
			return ret;
		return copy_to_user(uarg, &plane, minsz) ? -EFAULT : 0;
	}
	case VFIO_DEVICE_GET_GFX_DMABUF: {
		u32 id;

		if (get_user(id, (u32 __user *)uarg))
			return -EFAULT;
		return vt4_get_dmabuf(st, id);
	}
	}
	return -ENOTTY;
}

/* ---- open, close, life cycle --------------------------------------------- */

static int vt4_open_device(struct vfio_device *vdev)
{
	struct vt4_state *st = to_vt4_state(vdev);
	int ret;

	mutex_lock(&st->lock);
	ret = vt4_reset(st);
	if (ret)
		vt4_fb_free(st);
	mutex_unlock(&st->lock);
	return ret;
}

/* Exported dma-bufs keep their own page references; the instance's go, so
 * an instance nobody uses holds no memory. */
static void vt4_close_device(struct vfio_device *vdev)
{
	struct vt4_state *st = to_vt4_state(vdev);

	mutex_lock(&st->lock);
	st->scanout = false;
	vt4_fb_free(st);
	mutex_unlock(&st->lock);
}

static int vt4_init_dev(struct vfio_device *vdev)
{
	struct vt4_state *st = to_vt4_state(vdev);
	struct mdev_device *mdev = to_mdev_device(vdev->dev);

	st->pages = kvcalloc(VT4_FB_PAGES, sizeof(*st->pages), GFP_KERNEL);
	if (!st->pages)
		return -ENOMEM;
	mutex_init(&st->lock);
	st->type = to_vt4_type(mdev->type);
	st->display = READ_ONCE(vt4_display);
	st->width = VT4_DEFAULT_WIDTH;
	st->height = VT4_DEFAULT_HEIGHT;
	st->plane_id = 1;
	vt4_config_init(st);
	return 0;
}

static void vt4_release_dev(struct vfio_device *vdev)
{
	struct vt4_state *st = to_vt4_state(vdev);

	kvfree(st->pages);
	mutex_destroy(&st->lock);
#ifdef VT4_HAVE_VFIO_FREE_DEVICE
	vfio_free_device(vdev);
#endif
}

static const struct vfio_device_ops vt4_dev_ops = {
	.name = VT4_NAME,
	.init = vt4_init_dev,
	.release = vt4_release_dev,
	.open_device = vt4_open_device,
	.close_device = vt4_close_device,
	.read = vt4_read,
	.write = vt4_write,
	.ioctl = vt4_ioctl,
	.mmap = vt4_mmap,
#ifdef VT4_HAVE_IOMMUFD
	.bind_iommufd = vfio_iommufd_emulated_bind,
	.unbind_iommufd = vfio_iommufd_emulated_unbind,
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,
#endif
#ifdef VT4_HAVE_DETACH_IOAS
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
#endif
};

/* Reserve room for one instance of type t, or say why there is none. */
static int vt4_reserve(struct vt4_type *t, struct device *dev)
{
	struct vt4_parent *p = t->parent;
	const struct vt4_type_info *info = &vt4_types[t->index];
	int ret = 0;

	mutex_lock(&p->lock);
	if (p->instances && p->active_type != t->index) {
		dev_err(dev,
			"%s: this GPU runs %u %s instance(s); a T4 hosts one vGPU type at a time\n",
			info->sysfs_name, p->instances,
			vt4_types[p->active_type].sysfs_name);
		ret = -EBUSY;
	} else if (p->instances >= info->max_instances) {
		dev_err(dev, "nvidia-%s: all %u instances exist\n",
			info->sysfs_name, info->max_instances);
		ret = -ENOSPC;
	} else {
		p->instances++;
		p->active_type = t->index;
	}
	mutex_unlock(&p->lock);
	return ret;
}

static void vt4_unreserve(struct vt4_type *t)
{
	struct vt4_parent *p = t->parent;

	mutex_lock(&p->lock);
	if (!WARN_ON(!p->instances) && --p->instances == 0)
		p->active_type = -1;
	mutex_unlock(&p->lock);
}

static int vt4_probe(struct mdev_device *mdev)
{
	struct vt4_type *t = to_vt4_type(mdev->type);
	struct vt4_state *st;
	int ret;

	ret = vt4_reserve(t, &mdev->dev);
	if (ret)
		return ret;
	st = vfio_alloc_device(vt4_state, vdev, &mdev->dev, &vt4_dev_ops);
	if (IS_ERR(st)) {
		vt4_unreserve(t);
		return PTR_ERR(st);
	}
	ret = vfio_register_emulated_iommu_dev(&st->vdev);
	if (ret) {
		vfio_put_device(&st->vdev);
		vt4_unreserve(t);
		return ret;
	}
	dev_set_drvdata(&mdev->dev, st);
	/* While an instance exists the module stays: rmmod would remove it
	 * from under virt-handler or a domain. */
	__module_get(THIS_MODULE);
	dev_info(&mdev->dev, "%s (nvidia-%s), display %s\n",
		 vt4_types[t->index].pretty_name,
		 vt4_types[t->index].sysfs_name,
		 vt4_display_names[st->display]);
	return 0;
}

static void vt4_remove(struct mdev_device *mdev)
{
	struct vt4_state *st = dev_get_drvdata(&mdev->dev);
	struct vt4_type *t = st->type;

	vfio_unregister_group_dev(&st->vdev);
	vfio_put_device(&st->vdev);
	vt4_unreserve(t);
	module_put(THIS_MODULE);
}

/*
 * NVIDIA's format, as kubevirt's test quotes it from a T4:
 * "num_heads=4, frl_config=45, framebuffer=1024M, max_resolution=5120x2880,
 * max_instance=16" (one line).
 */
static ssize_t vt4_show_description(struct mdev_type *mtype, char *buf)
{
	const struct vt4_type_info *info =
		&vt4_types[to_vt4_type(mtype)->index];

	return sysfs_emit(
		buf,
		"num_heads=4, frl_config=45, framebuffer=%uM, max_resolution=5120x2880, max_instance=%u\n",
		info->framebuffer_mb, info->max_instances);
}

static unsigned int vt4_get_available(struct mdev_type *mtype)
{
	struct vt4_type *t = to_vt4_type(mtype);
	struct vt4_parent *p = t->parent;
	unsigned int n = 0;

	mutex_lock(&p->lock);
	if (!p->instances || p->active_type == t->index)
		n = vt4_types[t->index].max_instances - p->instances;
	mutex_unlock(&p->lock);
	return n;
}

/* ---- per-instance attributes: <mdev>/vgpuenv/ ---------------------------- */

static ssize_t scanout_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct vt4_state *st = dev_get_drvdata(dev);
	ssize_t n;

	mutex_lock(&st->lock);
	n = st->scanout ? sysfs_emit(buf, "on %ux%u\n", st->width, st->height)
			: sysfs_emit(buf, "off\n");
	mutex_unlock(&st->lock);
	return n;
}

/* What a guest driver does when it sets a mode, for hosts that test the
 * display without a guest OS. */
static ssize_t scanout_store(struct device *dev, struct device_attribute *attr,
			     const char *buf, size_t count)
{
	struct vt4_state *st = dev_get_drvdata(dev);
	bool on;
	int ret = kstrtobool(buf, &on);

	if (ret)
		return ret;
	mutex_lock(&st->lock);
	st->scanout = on;
	mutex_unlock(&st->lock);
	return count;
}
static DEVICE_ATTR_RW(scanout);

static ssize_t display_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct vt4_state *st = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", vt4_display_names[st->display]);
}
static DEVICE_ATTR_RO(display);

static ssize_t dmabufs_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	struct vt4_state *st = dev_get_drvdata(dev);
	unsigned long n;

	mutex_lock(&st->lock);
	n = st->dmabufs;
	mutex_unlock(&st->lock);
	return sysfs_emit(buf, "%lu\n", n);
}
static DEVICE_ATTR_RO(dmabufs);

static struct attribute *vt4_mdev_attrs[] = {
	&dev_attr_scanout.attr,
	&dev_attr_display.attr,
	&dev_attr_dmabufs.attr,
	NULL,
};

static const struct attribute_group vt4_mdev_group = {
	.name = "vgpuenv",
	.attrs = vt4_mdev_attrs,
};

static const struct attribute_group *vt4_mdev_groups[] = {
	&vt4_mdev_group,
	NULL,
};

static struct mdev_driver vt4_mdev_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = VT4_NAME "-vgpu",
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
		.dev_groups = vt4_mdev_groups,
	},
	.probe = vt4_probe,
	.remove = vt4_remove,
	.get_available = vt4_get_available,
	.show_description = vt4_show_description,
};

/* ---- parents ------------------------------------------------------------- */

static struct vt4_parent *vt4_parent_create(struct device *dev)
{
	struct vt4_parent *p;
	unsigned int i;
	int ret;

	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return ERR_PTR(-ENOMEM);
	mutex_init(&p->lock);
	p->dev = dev;
	p->active_type = -1;
	for (i = 0; i < VT4_NR_TYPES; i++) {
		p->types[i].type.sysfs_name = vt4_types[i].sysfs_name;
		p->types[i].type.pretty_name = vt4_types[i].pretty_name;
		p->types[i].parent = p;
		p->types[i].index = i;
		p->type_ptrs[i] = &p->types[i].type;
	}
	ret = mdev_register_parent(&p->mdev, dev, &vt4_mdev_driver,
				   p->type_ptrs, VT4_NR_TYPES);
	if (ret) {
		kfree(p);
		return ERR_PTR(ret);
	}
	dev_info(dev, "T4 with nvidia-%s (%s) and nvidia-%s (%s), display %s\n",
		 vt4_types[0].sysfs_name, vt4_types[0].pretty_name,
		 vt4_types[1].sysfs_name, vt4_types[1].pretty_name,
		 vt4_display_names[READ_ONCE(vt4_display)]);
	return p;
}

/* Removes the parent's instances too (the mdev core does). */
static void vt4_parent_destroy(struct vt4_parent *p)
{
	mdev_unregister_parent(&p->mdev);
	mutex_destroy(&p->lock);
	kfree(p);
}

static int vt4_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vt4_parent *p = vt4_parent_create(&pdev->dev);

	if (IS_ERR(p))
		return PTR_ERR(p);
	pci_set_drvdata(pdev, p);
	return 0;
}

static void vt4_pci_remove(struct pci_dev *pdev)
{
	vt4_parent_destroy(pci_get_drvdata(pdev));
}

static const struct pci_device_id vt4_pci_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT, 0x0005) }, /* QEMU pci-testdev */
	{}
};
MODULE_DEVICE_TABLE(pci, vt4_pci_ids);

static struct pci_driver vt4_pci_driver = {
	.name = VT4_PARENT_DRIVER,
	.id_table = vt4_pci_ids,
	.probe = vt4_pci_probe,
	.remove = vt4_pci_remove,
};

static int vt4_platform_probe(struct platform_device *pdev)
{
	struct vt4_parent *p = vt4_parent_create(&pdev->dev);

	if (IS_ERR(p))
		return PTR_ERR(p);
	platform_set_drvdata(pdev, p);
	return 0;
}

#ifdef VT4_PLATFORM_REMOVE_VOID
static void vt4_platform_remove(struct platform_device *pdev)
{
	vt4_parent_destroy(platform_get_drvdata(pdev));
}
#else
static int vt4_platform_remove(struct platform_device *pdev)
{
	vt4_parent_destroy(platform_get_drvdata(pdev));
	return 0;
}
#endif

/* Matches the devices by name: "nvidia", "nvidia.N". */
static struct platform_driver vt4_platform_driver = {
	.driver = { .name = VT4_PARENT_DRIVER },
	.probe = vt4_platform_probe,
	.remove = vt4_platform_remove,
};

static struct platform_device *vt4_vdevs[VT4_MAX_VIRTUAL_PARENTS];

static void vt4_virtual_destroy(void)
{
	unsigned int i;

	for (i = 0; i < VT4_MAX_VIRTUAL_PARENTS; i++) {
		if (vt4_vdevs[i])
			platform_device_unregister(vt4_vdevs[i]);
		vt4_vdevs[i] = NULL;
	}
}

static int vt4_virtual_create(void)
{
	unsigned int i;

	for (i = 0; i < vt4_virtual_parents; i++) {
		/* One parent is "nvidia", as on KubeVirt's Kind lane. */
		int id =
			vt4_virtual_parents == 1 ? PLATFORM_DEVID_NONE : (int)i;
		struct platform_device *pd;

		pd = platform_device_register_simple(VT4_PARENT_DRIVER, id,
						     NULL, 0);
		if (IS_ERR(pd))
			return PTR_ERR(pd);
		vt4_vdevs[i] = pd;
		if (!pd->dev.driver)
			return -ENODEV; /* the driver did not bind */
	}
	return 0;
}

static int __init vt4_init(void)
{
	int ret;

	if (vt4_virtual_parents > VT4_MAX_VIRTUAL_PARENTS) {
		pr_err(VT4_NAME ": virtual_parents=%u: at most %u\n",
		       vt4_virtual_parents, VT4_MAX_VIRTUAL_PARENTS);
		return -EINVAL;
	}
	ret = mdev_register_driver(&vt4_mdev_driver);
	if (ret)
		return ret;
	ret = pci_register_driver(&vt4_pci_driver);
	if (ret) {
		pr_err(VT4_NAME
		       ": cannot register the PCI driver \"%s\" (%d): is NVIDIA's driver loaded?\n",
		       VT4_PARENT_DRIVER, ret);
		goto err_mdev;
	}
	ret = platform_driver_register(&vt4_platform_driver);
	if (ret)
		goto err_pci;
	ret = vt4_virtual_create();
	if (ret)
		goto err_virtual;
	return 0;

err_virtual:
	vt4_virtual_destroy();
	platform_driver_unregister(&vt4_platform_driver);
err_pci:
	pci_unregister_driver(&vt4_pci_driver);
err_mdev:
	mdev_unregister_driver(&vt4_mdev_driver);
	return ret;
}

static void __exit vt4_exit(void)
{
	vt4_virtual_destroy();
	platform_driver_unregister(&vt4_platform_driver);
	pci_unregister_driver(&vt4_pci_driver);
	mdev_unregister_driver(&vt4_mdev_driver);
}

module_init(vt4_init);
module_exit(vt4_exit);

#ifdef VT4_IMPORT_NS_STRING
MODULE_IMPORT_NS("DMA_BUF");
#else
MODULE_IMPORT_NS(DMA_BUF);
#endif
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION(
	"vgpuenv: an emulated NVIDIA T4 vGPU (mdev types nvidia-222, nvidia-223) for KubeVirt's tests");
MODULE_VERSION("1");
