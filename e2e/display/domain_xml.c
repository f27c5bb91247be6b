/* The domain virt-launcher would define for a VMI with one vGPU, reduced to
 * what display init depends on, for the display-chain proof.
 *
 * Shape taken from KubeVirt's converter (and webhook/tests/fixtures/
 * domain-vgpu.xml): q35, a VGA video device, VNC as the only graphics, the
 * mdev hostdev with display='on' ramfb='on' (KubeVirt's default for vGPUs)
 * and managed='no' (virt-handler creates the mdev, not libvirt). The VNC
 * socket moves from KubeVirt's private directory to a plain address: the
 * node has no virt-launcher paths, and VNC is not what fails. */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "e2e/display/display.h"

static bool is_uuid(const char *s)
{
        if (!s || strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
                        return false;
        }
        return true;
}

static bool is_plain_name(const char *s)
{
        return !isempty(s) && strlen(s) <= 64 &&
               strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(s);
}

int display_domain_xml(const char *name, const char *mdev_uuid, unsigned memory_mib, char **ret)
{
        char *x;

        if (!is_plain_name(name) || !is_uuid(mdev_uuid) || memory_mib < 16 || memory_mib > 4096)
                return -EINVAL;
        x = strdup_printf(
            "<domain type=\"qemu\">\n"
            "  <name>%s</name>\n"
            "  <memory unit=\"MiB\">%u</memory>\n"
            "  <vcpu placement=\"static\">1</vcpu>\n"
            "  <os>\n"
            "    <type arch=\"x86_64\" machine=\"q35\">hvm</type>\n"
            "  </os>\n"
            "  <features>\n"
            "    <acpi></acpi>\n"
            "  </features>\n"
            "  <cpu mode=\"custom\">\n"
            "    <model>qemu64</model>\n"
            "  </cpu>\n"
            "  <on_poweroff>destroy</on_poweroff>\n"
            "  <on_reboot>destroy</on_reboot>\n"
            "  <devices>\n"
            "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
            "    <controller type=\"usb\" index=\"0\" model=\"none\"></controller>\n"
            "    <video>\n"
            "      <model type=\"vga\" heads=\"1\" vram=\"16384\"></model>\n"
            "    </video>\n"
            "    <graphics type=\"vnc\" autoport=\"yes\">\n"
            "      <listen type=\"address\" address=\"127.0.0.1\"></listen>\n"
            "    </graphics>\n"
            "    <hostdev mode=\"subsystem\" type=\"mdev\" managed=\"no\" model=\"vfio-pci\" "
            "display=\"on\" ramfb=\"on\">\n"
            "      <source>\n"
            "        <address uuid=\"%s\"></address>\n"
            "      </source>\n"
            "      <alias name=\"%s\"></alias>\n"
            "    </hostdev>\n"
            "    <memballoon model=\"none\"></memballoon>\n"
            "  </devices>\n"
            "</domain>\n",
            name, memory_mib, mdev_uuid, DISPLAY_HOSTDEV_ALIAS);
        if (!x)
                return -ENOMEM;
        *ret = x;
        return 0;
}
