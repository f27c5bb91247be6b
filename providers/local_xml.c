/* XML builders and ownership-mark readers for the local provider (see
 * local_xml.h). Values that come from the config or from paths are escaped
 * with libxml2, never pasted raw. */
#include "providers/local_xml.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Escape for element text and single- or double-quoted attributes
 * (libxml2's xmlEncodeSpecialChars leaves ' alone, and our attributes use '). */
static char *esc(const char *s)
{
        size_t n = 1;
        char *r, *p;

        s = s ? s : "";
        for (const char *c = s; *c; c++)
                n += strchr("&<>\"'", *c) ? 6 : 1;
        r = p = malloc(n);
        if (!r)
                return NULL;
        for (; *s; s++)
                switch (*s) {
                case '&':
                        p = stpcpy(p, "&amp;");
                        break;
                case '<':
                        p = stpcpy(p, "&lt;");
                        break;
                case '>':
                        p = stpcpy(p, "&gt;");
                        break;
                case '"':
                        p = stpcpy(p, "&quot;");
                        break;
                case '\'':
                        p = stpcpy(p, "&apos;");
                        break;
                default:
                        *p++ = *s;
                }
        *p = 0;
        return r;
}

char *local_network_name(const struct config *c)
{
        return strdup_printf("vgpuenv-%s", c->name);
}

char *local_pool_name(const struct config *c)
{
        return strdup_printf("vgpuenv-%s", c->name);
}

char *local_domain_name(const struct config *c, unsigned i)
{
        return strdup_printf("vgpuenv-%s-node%u", c->name, i + 1);
}

static unsigned name_hash(const char *s)
{
        unsigned h = 2166136261u; /* FNV-1a: stable across runs and hosts */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 16777619u;
        return h;
}

char *local_node_mac(const struct config *c, unsigned i)
{
        unsigned h = name_hash(c->name);

        return strdup_printf("52:54:00:%02x:%02x:%02x", (h >> 8) & 0xff, h & 0xff, (i + 1) & 0xff);
}

static char *bridge_name(const struct config *c)
{
        /* Linux interface names are at most 15 characters. */
        return strdup_printf("vgpu%08x", name_hash(c->name));
}

char *local_network_xml(const struct config *c)
{
        _cleanup_free_ char *name = local_network_name(c), *br = bridge_name(c);
        _cleanup_free_ char *host = config_host_ip(c), *hosts = strdup("");
        _cleanup_free_ char *first = config_node_ip(c, 0), *last = NULL;

        if (!name || !br || !host || !hosts || !first)
                return NULL;
        for (unsigned i = 0; i < c->nodes.count; i++) {
                _cleanup_free_ char *mac = local_node_mac(c, i), *ip = config_node_ip(c, i);
                _cleanup_free_ char *hn = config_node_name(c, i);
                char *n;
                if (!mac || !ip || !hn)
                        return NULL;
                n = strdup_printf("%s      <host mac='%s' name='%s' ip='%s'/>\n", hosts, mac, hn,
                                  ip);
                if (!n)
                        return NULL;
                free(hosts);
                hosts = n;
        }
        last = config_node_ip(c, c->nodes.count - 1);
        if (!last)
                return NULL;
        return strdup_printf("<network>\n"
                             "  <name>%s</name>\n"
                             "%s"
                             "  <bridge name='%s' stp='off' delay='0'/>\n"
                             "  <dns>\n"
                             "    <txt name='" OWNER_TXT_NAME "' value='cluster=%s'/>\n"
                             "  </dns>\n"
                             "  <ip address='%s' netmask='255.255.255.0'>\n"
                             "    <dhcp>\n"
                             "      <range start='%s' end='%s'/>\n"
                             "%s"
                             "    </dhcp>\n"
                             "  </ip>\n"
                             "</network>\n",
                             name,
                             c->network.mode == NETWORK_NAT ? "  <forward mode='nat'/>\n" : "", br,
                             c->name, host, first, last, hosts);
}

char *local_pool_xml(const struct config *c, const char *dir)
{
        _cleanup_free_ char *name = local_pool_name(c), *d = esc(dir);

        if (!name || !d)
                return NULL;
        return strdup_printf("<pool type='dir'>\n  <name>%s</name>\n"
                             "  <target>\n    <path>%s</path>\n"
                             "    <permissions><mode>0711</mode></permissions>\n"
                             "  </target>\n</pool>\n",
                             name, d);
}

char *local_volume_xml(const char *name, unsigned long long capacity, const char *backing)
{
        _cleanup_free_ char *n = esc(name), *b = esc(backing);

        if (!n || !b)
                return NULL;
        return strdup_printf(
            "<volume>\n  <name>%s</name>\n"
            "  <capacity unit='bytes'>%llu</capacity>\n"
            "  <target><format type='qcow2'/>"
            "<permissions><mode>0644</mode></permissions></target>\n"
            "  <backingStore><path>%s</path><format type='qcow2'/></backingStore>\n"
            "</volume>\n",
            n, capacity, b);
}

static char *video_and_graphics(const struct config *c, const struct local_node_spec *n)
{
        switch (c->gpu) {
        case GPU_NONE:
                return strdup("    <video><model type='none'/></video>\n");
        case GPU_VIRTIO_3D: {
                _cleanup_free_ char *rn = esc(n->render_node);
                return strdup_printf("    <video><model type='virtio' heads='1' primary='yes'>"
                                     "<acceleration accel3d='yes'/></model></video>\n"
                                     "    <graphics type='egl-headless'>"
                                     "<gl rendernode='%s'/></graphics>\n",
                                     rn ? rn : "");
        }
        default:
                return strdup(
                    "    <video><model type='virtio' heads='1' primary='yes'/></video>\n");
        }
}

/* The PCI function the fake vGPU's driver binds to (provision/vgpu/): QEMU's
 * pci-testdev, which no in-tree driver claims, alone behind a PCIe root port
 * so that it is function 00.0 of its bus, as KubeVirt's generic-mdev spec
 * assumes of a parent (it unbinds the parent's dd.f replaced by 00.0).
 * libvirt has no element for either device, so they are QEMU arguments; the
 * root port sits at slot 0x1c of pcie.0, away from libvirt's own ports
 * (slot 2 on, chassis from 1) and the ICH9 functions (0x1d-0x1f). */
static const char vgpu_parent_args[] =
    "  <qemu:commandline>\n"
    "    <qemu:arg value='-device'/>\n"
    "    <qemu:arg value='pcie-root-port,id=" LOCAL_VGPU_PORT_ID ",bus=pcie.0,addr=0x1c.0x0,"
    "chassis=28,port=0x1c'/>\n"
    "    <qemu:arg value='-device'/>\n"
    "    <qemu:arg value='pci-testdev,id=" LOCAL_VGPU_PARENT_ID ",bus=" LOCAL_VGPU_PORT_ID
    ",addr=0x0'/>\n"
    "  </qemu:commandline>\n";

static bool wants_vgpu_parent(const struct config *c)
{
        enum vgpu_mode m = config_vgpu_mode(c);
        return m == VGPU_DMABUF || m == VGPU_REGION;
}

char *local_domain_xml(const struct config *c, const struct local_node_spec *n)
{
        bool parent = wants_vgpu_parent(c);
        _cleanup_free_ char *os = NULL, *video = video_and_graphics(c, n);
        _cleanup_free_ char *log = esc(n->console_log), *pool = esc(n->pool), *vol = esc(n->volume);

        if (!video || !log || !pool || !vol)
                return NULL;
        if (n->kernel) {
                _cleanup_free_ char *k = esc(n->kernel), *i = esc(n->initrd);
                _cleanup_free_ char *root = esc(n->root_arg);
                if (!k || !i || !root)
                        return NULL;
                /* systemd.hostname: one cached image serves every node.
                 * The rest trims a TCG boot: crypto self-tests, probing of
                 * 4 legacy UARTs, and speculation mitigations (a page-table
                 * switch per syscall is a software TLB flush under TCG)
                 * cost CPU that booting nodes share; these are throwaway
                 * test VMs. */
                os = strdup_printf("    <kernel>%s</kernel>\n    <initrd>%s</initrd>\n"
                                   "    <cmdline>%s rw console=ttyS0 systemd.hostname=%s "
                                   "fsck.mode=skip quiet cryptomgr.notests 8250.nr_uarts=1 "
                                   "mitigations=off</cmdline>\n",
                                   k, i, root, n->name);
        } else
                os = strdup("    <boot dev='hd'/>\n");
        if (!os)
                return NULL;
        return strdup_printf(
            "<domain type='%s'%s>\n"
            "  <name>%s</name>\n"
            "  <title>vgpuenv node %s</title>\n"
            "  <metadata>\n"
            "    <vgpuenv:owner xmlns:vgpuenv='" VGPUENV_XMLNS "' cluster='%s' node='%s' "
            "run='%s'/>\n"
            "  </metadata>\n"
            "  <memory unit='MiB'>%u</memory>\n"
            "  <vcpu>%u</vcpu>\n"
            "  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n%s  </os>\n"
            "  <features><acpi/><apic/></features>\n"
            "  <clock offset='utc'/>\n"
            "  <on_poweroff>destroy</on_poweroff>\n"
            "  <on_reboot>restart</on_reboot>\n"
            "  <on_crash>destroy</on_crash>\n"
            "  <devices>\n"
            "    <disk type='volume' device='disk'>\n"
            "      <driver name='qemu' type='qcow2' discard='unmap'/>\n"
            "      <source pool='%s' volume='%s'/>\n"
            "      <target dev='vda' bus='virtio'/>\n"
            "    </disk>\n"
            "    <interface type='network'>\n"
            "      <source network='vgpuenv-%s'/>\n"
            "      <mac address='%s'/>\n"
            "      <model type='virtio'/>\n"
            "    </interface>\n"
            "    <serial type='file'>\n"
            "      <source path='%s' append='on'/>\n"
            "      <target port='0'/>\n"
            "    </serial>\n"
            "%s"
            "    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\n"
            "    <memballoon model='none'/>\n"
            "  </devices>\n"
            "%s"
            "</domain>\n",
            n->domain_type, parent ? " xmlns:qemu='" LOCAL_QEMU_XMLNS "'" : "", n->domain, n->name,
            c->name, n->name, n->run_id, c->nodes.memory, c->nodes.cpus, os, pool, vol, c->name,
            n->mac, log, video, parent ? vgpu_parent_args : "");
}

static char *xpath_string(const char *xml, const char *expr, bool ns)
{
        xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "obj.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlXPathContextPtr xp = NULL;
        xmlXPathObjectPtr o = NULL;
        char *r = NULL;

        if (!doc)
                return NULL;
        xp = xmlXPathNewContext(doc);
        if (xp && ns)
                xmlXPathRegisterNs(xp, (const xmlChar *)"v", (const xmlChar *)VGPUENV_XMLNS);
        if (xp)
                o = xmlXPathEvalExpression((const xmlChar *)expr, xp);
        if (o && o->type == XPATH_STRING && o->stringval && *o->stringval)
                r = strdup((const char *)o->stringval);
        xmlXPathFreeObject(o);
        xmlXPathFreeContext(xp);
        xmlFreeDoc(doc);
        return r;
}

char *local_owner_of_domain_xml(const char *xml)
{
        return xpath_string(xml, "string(/domain/metadata/v:owner/@cluster)", true);
}

char *local_owner_of_network_xml(const char *xml)
{
        _cleanup_free_ char *v =
            xpath_string(xml, "string(/network/dns/txt[@name='" OWNER_TXT_NAME "']/@value)", false);

        if (!v || !startswith(v, "cluster="))
                return NULL;
        return strdup(v + strlen("cluster="));
}
