/* Unit tests for the local provider's libvirt XML: every object it builds is
 * accepted by a real libvirt (the in-process test driver), carries the
 * ownership mark, and escapes values from the config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "provision/base/config.h"
#include "providers/local_xml.h"
#include "tests/unit/libvirt_test_driver.h"

static void quiet(void *o, virErrorPtr e)
{
        (void)o;
        (void)e;
}

static struct config *cfg_new(unsigned nodes, int gpu)
{
        struct config *c = calloc(1, sizeof(*c));

        config_init_defaults(c);
        free(c->name);
        c->name = strdup("unit");
        c->nodes.count = nodes;
        c->gpu = gpu;
        return c;
}

static void cfg_free(struct config *c)
{
        config_done(c);
        free(c);
}

static char *domain_for(struct config *c, unsigned i, const char *kernel, const char *type)
{
        char *name = config_node_name(c, i), *dn = local_domain_name(c, i);
        char *mac = local_node_mac(c, i), *ip = config_node_ip(c, i);
        struct local_node_spec spec = {
            .name = name,
            .domain = dn,
            .mac = mac,
            .ip = ip,
            .volume = "node1.qcow2",
            .pool = "default-pool",
            .console_log = "/tmp/a&b's console.log",
            .kernel = kernel,
            .initrd = kernel ? "/k/initrd.img" : NULL,
            .root_arg = "root=/dev/vda",
            .run_id = "r1",
            .domain_type = type,
            .render_node = "/dev/dri/renderD128",
        };
        char *xml = local_domain_xml(c, &spec);
        free(name);
        free(dn);
        free(mac);
        free(ip);
        return xml;
}

/* The domain of c's node i of type "qemu": what it must contain (has) and
 * what it must not (lacks), NULL-terminated. */
static void domain_is(struct config *c, const char *const *has, const char *const *lacks)
{
        char *xml = domain_for(c, 0, NULL, "qemu");

        for (; has && *has; has++)
                if (!strstr(xml, *has))
                        fail_msg("no %s in\n%s", *has, xml);
        for (; lacks && *lacks; lacks++)
                if (strstr(xml, *lacks))
                        fail_msg("%s in\n%s", *lacks, xml);
        free(xml);
}

#define STRV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_domain_defines_in_libvirt(void **state)
{
        (void)state;
        struct config *c = cfg_new(2, GPU_VIRTIO);
        char *xml = domain_for(c, 1, "/k/vmlinuz", "test");
        char *back, *owner;

        assert_non_null(xml);
        back = test_driver_domain_xml(xml, 0);
        assert_non_null(strstr(back, "<name>vgpuenv-unit-node2</name>"));
        assert_non_null(strstr(back, "<model type='virtio'"));
        assert_non_null(strstr(back, "systemd.hostname=unit-node2"));
        /* The path with & and ' survived escaping and re-serialization. */
        assert_non_null(strstr(back, "/tmp/a&amp;b&apos;s console.log"));
        owner = local_owner_of_domain_xml(back);
        assert_string_equal(owner, "unit");
        free(owner);
        free(back);
        free(xml);
        cfg_free(c);
}

static void test_gpu_variants(void **state)
{
        (void)state;
        struct config *c = cfg_new(1, GPU_NONE);

        domain_is(c, STRV("<model type='none'/>", "<boot dev='hd'/>"), STRV("virtio' heads"));
        c->gpu = GPU_VIRTIO_3D;
        domain_is(c,
                  STRV("accel3d='yes'",
                       "<graphics type='egl-headless'><gl rendernode='/dev/dri/renderD128'/>"),
                  NULL);
        cfg_free(c);
}

/* The fake vGPU's PCI parent (provision/vgpu/): pci-testdev as function
 * 00.0 behind its own PCIe root port, as QEMU arguments, only when the
 * config loads the fake vGPU. */
static void test_vgpu_parent_device(void **state)
{
        (void)state;
        struct config *c = cfg_new(1, GPU_VIRTIO);
        char *xml = domain_for(c, 0, "/k/vmlinuz", "test");

        assert_non_null(xml);
        /* vgpu: auto on the local provider is dmabuf. */
        assert_non_null(strstr(xml, "<domain type='test' xmlns:qemu='" LOCAL_QEMU_XMLNS "'>"));
        const char *a = strstr(xml, "<qemu:commandline>");
        assert_non_null(a);
        assert_true(a > strstr(xml, "</devices>"));
        assert_non_null(strstr(a, "<qemu:arg value='-device'/>\n    <qemu:arg "
                                  "value='pcie-root-port,id=vgpuenv-rp,bus=pcie.0,addr=0x1c.0x0,"
                                  "chassis=28,port=0x1c'/>"));
        assert_non_null(strstr(a, "<qemu:arg value='-device'/>\n    <qemu:arg "
                                  "value='pci-testdev,id=vgpuenv-t4,bus=vgpuenv-rp,addr=0x0'/>"));
        /* Well-formed, and libvirt still defines the domain. */
        xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "d.xml", NULL, XML_PARSE_NONET);
        assert_non_null(doc);
        xmlFreeDoc(doc);
        free(test_driver_domain_xml(xml, 0));
        free(xml);

        c->vgpu = VGPU_REGION;
        domain_is(c, STRV("pci-testdev,id=vgpuenv-t4"), NULL);
        c->vgpu = VGPU_NONE;
        domain_is(c, STRV("<domain type='qemu'>"), STRV("qemu:"));
        c->vgpu = VGPU_HOST;
        domain_is(c, NULL, STRV("pci-testdev"));
        cfg_free(c);
}

static void test_network_defines_and_is_marked(void **state)
{
        (void)state;
        struct config *c = cfg_new(3, GPU_VIRTIO);
        virConnectPtr conn = virConnectOpen("test:///default");
        _cleanup_free_ char *xml = local_network_xml(c);

        assert_non_null(xml);
        virNetworkPtr n = virNetworkDefineXML(conn, xml);
        assert_non_null(n);
        _cleanup_free_ char *back = virNetworkGetXMLDesc(n, 0);
        _cleanup_free_ char *owner = local_owner_of_network_xml(back);
        assert_string_equal(owner, "unit");
        /* One static lease per node, nodes from .10. */
        assert_non_null(strstr(back, "ip='192.168.123.10'"));
        assert_non_null(strstr(back, "ip='192.168.123.12'"));
        assert_null(strstr(back, "ip='192.168.123.13'"));
        assert_non_null(strstr(back, "<forward mode='nat'"));
        virNetworkUndefine(n);
        virNetworkFree(n);
        virConnectClose(conn);
        cfg_free(c);
}

static void test_foreign_objects_have_no_owner(void **state)
{
        (void)state;
        char *o = local_owner_of_domain_xml("<domain type='kvm'><name>x</name></domain>");
        assert_null(o);
        o = local_owner_of_domain_xml("not xml at all <");
        assert_null(o);
        o = local_owner_of_network_xml("<network><name>default</name><dns><txt name='other' "
                                       "value='cluster=unit'/></dns></network>");
        assert_null(o);
}

static void test_macs_are_stable_and_distinct(void **state)
{
        (void)state;
        struct config *c = cfg_new(3, GPU_VIRTIO);
        _cleanup_free_ char *a = local_node_mac(c, 0), *b = local_node_mac(c, 1),
                            *a2 = local_node_mac(c, 0);

        assert_string_equal(a, a2);
        assert_string_not_equal(a, b);
        assert_true(startswith(a, "52:54:00:"));
        cfg_free(c);
}

static void test_volume_backed_by_image(void **state)
{
        (void)state;
        virConnectPtr conn = virConnectOpen("test:///default");
        virStoragePoolPtr p = virStoragePoolLookupByName(conn, "default-pool");
        char *xml = local_volume_xml("node1.qcow2", 6ULL << 30, "/cache/images/x/disk.qcow2");
        virStorageVolPtr v;

        assert_non_null(p);
        assert_non_null(strstr(xml, "<backingStore><path>/cache/images/x/disk.qcow2</path>"));
        v = virStorageVolCreateXML(p, xml, 0);
        assert_non_null(v);
        virStorageVolDelete(v, 0);
        virStorageVolFree(v);
        virStoragePoolFree(p);
        virConnectClose(conn);
        free(xml);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_domain_defines_in_libvirt),
            cmocka_unit_test(test_gpu_variants),
            cmocka_unit_test(test_vgpu_parent_device),
            cmocka_unit_test(test_network_defines_and_is_marked),
            cmocka_unit_test(test_foreign_objects_have_no_owner),
            cmocka_unit_test(test_macs_are_stable_and_distinct),
            cmocka_unit_test(test_volume_backed_by_image),
        };
        virSetErrorFunc(NULL, quiet);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
