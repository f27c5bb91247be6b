/* The bytes of the files node setup owns (see node_files.h). */
#include "provision/base/node_files.h"

const char node_modules_load_text[] =
    "# Written by vgpuenv: the render node the vGPU display needs comes from virtio-gpu.\n"
    "virtio-gpu\n";

/* MODE 0666 rather than a GROUP: gid 107 has no name on most nodes, and
 * QEMU in virt-launcher runs as uid/gid 107 with no supplementary groups. */
const char node_udev_rule_text[] =
    "# Written by vgpuenv: virt-launcher's QEMU (uid/gid 107) must open the render node.\n"
    "SUBSYSTEM==\"drm\", KERNEL==\"renderD*\", MODE=\"0666\"\n";
