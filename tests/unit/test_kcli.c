/* The kcli provider's pieces: the parameter file, the kcli command line, the
 * key-exchange command (parsed by a real shell), the domain XML edit, which
 * domains count as the cluster's, and the video fix on libvirt's test
 * driver (define, redefine, restart of a running domain, idempotency).
 * The same flow against a real libvirtd is tests/integration/provider_kcli.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libvirt/libvirt.h>

#include "common/proc.h"
#include "common/util.h"
#include "providers/kcli_domains.h"
#include "providers/kcli_internal.h"
#include "tests/unit/text.h"
#include "tests/unit/fixture_tests.h"

static void test_params(void **state)
{
        (void)state;
        struct config c;
        config_init_defaults(&c);
        c.nodes.count = 3;
        c.nodes.ctlplanes = 1;
        c.nodes.cpus = 2;
        c.nodes.memory = 4096;
        c.nodes.disk = 20;
        c.path = strdup("/x/kcli.yaml");
        char *t = kcli_params_text(&c);
        assert_string_equal(
            t, "# Written by vgpuenv from /x/kcli.yaml: parameters of `kcli create kube "
               "generic`.\nctlplanes: 1\nworkers: 2\nimage: \"centos9stream\"\n"
               "memory: 4096\nnumcpus: 2\ndisk_size: 20\n");
        free(t);
        /* a version is a string for kcli: 1.30 must not become 1.3 */
        c.kcli.version = strdup("1.30");
        free(c.kcli.image);
        c.kcli.image = strdup("ubuntu\"2204");
        t = kcli_params_text(&c);
        assert_non_null(strstr(t, "version: \"1.30\"\n"));
        assert_non_null(strstr(t, "image: \"ubuntu\\\"2204\"\n"));
        free(t);

        const char *args[] = {"delete", "kube", "--yes", "c1", NULL};
        char **argv = kcli_argv(&c, args);
        char *s = strv_join(argv, " ");
        assert_string_equal(s, "kcli delete kube --yes c1");
        free(s);
        strv_free(argv);
        c.kcli.client = strdup("remote");
        argv = kcli_argv(&c, args);
        s = strv_join(argv, " ");
        assert_string_equal(s, "kcli -C remote delete kube --yes c1");
        free(s);
        strv_free(argv);
        config_done(&c);
}

static void test_bootstrap_command(void **state)
{
        (void)state;
        /* A key comment with shell metacharacters must arrive verbatim. */
        const char *pub = "ssh-ed25519 AAAAC3Nza it's $(x) `y`";
        char *cmd = kcli_bootstrap_command(pub);
        assert_non_null(cmd);
        /* The node's shell parses cmd; `sudo sh -c SCRIPT` then runs SCRIPT.
         * Emulate: parse with a real shell and print the script argument. */
        char *script = strdup_printf("set -- %s; printf '%%s' \"$4\"", cmd);
        char *const argv[] = {"sh", "-c", script, NULL};
        _cleanup_free_ char *out = NULL, *out2 = NULL;
        assert_int_equal(proc_run_checked("sh", argv, NULL, -1, &out), 0);
        assert_non_null(strstr(out, "grep -qxF 'ssh-ed25519 AAAAC3Nza it'\\''s $(x) `y`' "
                                    "/root/.ssh/authorized_keys"));
        /* and that inner quoting gives the key back verbatim to grep
         * (only the quoted word is evaluated, nothing else of the script) */
        const char *k0 = strstr(out, "grep -qxF ") + strlen("grep -qxF ");
        const char *k1 = strstr(k0, " /root/.ssh/authorized_keys");
        char *inner = strdup_printf("set -- %.*s; printf '%%s' \"$1\"", (int)(k1 - k0), k0);
        char *const argv2[] = {"sh", "-c", inner, NULL};
        assert_int_equal(proc_run_checked("sh", argv2, NULL, -1, &out2), 0);
        assert_string_equal(out2, "ssh-ed25519 AAAAC3Nza it's $(x) `y`");
        free(inner);
        assert_non_null(strstr(out, "cat /etc/ssh/ssh_host_ed25519_key.pub"));
        free(script);
        free(cmd);
}

#define DOM(name, meta, video)                                                                     \
        "<domain type='test'><name>" name                                                          \
        "</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>" meta                                 \
        "<os><type arch='x86_64'>hvm</type></os><devices>" video "</devices></domain>"
#define META(kube)                                                                                 \
        "<metadata><kvirt:info xmlns:kvirt=\"kvirt\"><kvirt:plan>" kube                            \
        "</kvirt:plan><kvirt:kube>" kube "</kvirt:kube></kvirt:info></metadata>"
#define CIRRUS "<video><model type='cirrus' vram='16384' heads='1'/></video>"
#define VGA "<video><model type='vga' vram='16384' heads='1' primary='yes'/></video>"
#define VIRTIO "<video><model type='virtio' heads='1'/></video>"

static void test_xml_edit(void **state)
{
        (void)state;
        char *out = NULL;
        /* none: one is added */
        assert_int_equal(kcli_xml_video_virtio(DOM("a", "", ""), &out), 1);
        assert_non_null(strstr(out, "<video>"));
        assert_non_null(strstr(out, "<model type=\"virtio\"/>"));
        assert_true(kcli_xml_video_is_virtio(out));
        free(out);
        /* cirrus: becomes virtio, vram and heads dropped */
        assert_int_equal(kcli_xml_video_virtio(DOM("a", "", CIRRUS), &out), 1);
        assert_non_null(strstr(out, "<model type=\"virtio\"/>"));
        assert_null(strstr(out, "vram"));
        assert_int_equal(count_of(out, "<video"), 1);
        free(out);
        /* vga: primary kept, sizes dropped */
        assert_int_equal(kcli_xml_video_virtio(DOM("a", "", VGA), &out), 1);
        assert_non_null(strstr(out, "<model type=\"virtio\" primary=\"yes\"/>"));
        free(out);
        /* already virtio: nothing */
        assert_int_equal(kcli_xml_video_virtio(DOM("a", "", VIRTIO), &out), 0);
        assert_null(out);
        /* two heads, one not virtio: fixed */
        assert_int_equal(kcli_xml_video_virtio(DOM("a", "", VIRTIO CIRRUS), &out), 1);
        assert_int_equal(count_of(out, "type=\"virtio\""), 2);
        free(out);
        assert_int_equal(kcli_xml_video_virtio("<domain><nodevices/></domain>", &out), -EINVAL);
        assert_int_equal(kcli_xml_video_virtio("not xml", &out), -EINVAL);
        assert_false(kcli_xml_video_is_virtio(DOM("a", "", "")));
}

static void test_membership(void **state)
{
        (void)state;
        /* metadata decides */
        assert_true(kcli_domain_is_of_cluster(DOM("x", META("c1"), ""), "whatever", "c1"));
        assert_false(
            kcli_domain_is_of_cluster(DOM("c1-worker-0", META("c2"), ""), "c1-worker-0", "c1"));
        /* c1 must not claim c1b's nodes */
        assert_false(
            kcli_domain_is_of_cluster(DOM("c1b-worker-0", META("c1b"), ""), "c1b-worker-0", "c1"));
        /* without metadata: kcli's names only */
        assert_true(kcli_domain_is_of_cluster(DOM("c1-ctlplane-0", "", ""), "c1-ctlplane-0", "c1"));
        assert_true(kcli_domain_is_of_cluster(DOM("c1-worker-12", "", ""), "c1-worker-12", "c1"));
        assert_false(kcli_domain_is_of_cluster(DOM("c1-worker-", "", ""), "c1-worker-", "c1"));
        assert_false(kcli_domain_is_of_cluster(DOM("c1-worker-0x", "", ""), "c1-worker-0x", "c1"));
        assert_false(kcli_domain_is_of_cluster(DOM("c1-bastion", "", ""), "c1-bastion", "c1"));
        assert_false(kcli_domain_is_of_cluster(DOM("c10-worker-0", "", ""), "c10-worker-0", "c1"));
}

static void test_fix_on_test_driver(void **state)
{
        (void)state;
        virConnectPtr conn = virConnectOpen("test:///default");
        assert_non_null(conn);
        const char *defs[] = {
            DOM("k1-ctlplane-0", META("k1"), ""), DOM("k1-worker-0", META("k1"), CIRRUS),
            DOM("k1-worker-1", META("k1"), VGA),  DOM("k2-ctlplane-0", META("k2"), CIRRUS),
            DOM("k1-worker-9", META("k2"), VGA), /* k2's despite the name */
        };
        for (size_t i = 0; i < ELEMENTSOF(defs); i++) {
                virDomainPtr d = virDomainDefineXML(conn, defs[i]);
                assert_non_null(d);
                if (i == 2)
                        assert_int_equal(virDomainCreate(d), 0);
                virDomainFree(d);
        }
        char *k2_before = NULL, *k9_before = NULL;
        virDomainPtr d = virDomainLookupByName(conn, "k2-ctlplane-0");
        k2_before = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
        virDomainFree(d);
        d = virDomainLookupByName(conn, "k1-worker-9");
        k9_before = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
        virDomainFree(d);

        char **names = NULL;
        assert_int_equal(kcli_cluster_domains(conn, "k1", &names), 0);
        char *joined = strv_join(names, " ");
        assert_string_equal(joined, "k1-ctlplane-0 k1-worker-0 k1-worker-1");
        free(joined);
        strv_free(names);

        struct cancel never;
        cancel_init_root(&never, NULL);
        struct kcli_fix_report rep = {};
        assert_int_equal(kcli_fix_domains(&never, conn, "k1", 1, &rep), 0);
        joined = strv_join(rep.redefined, " ");
        assert_string_equal(joined, "k1-ctlplane-0 k1-worker-0 k1-worker-1");
        free(joined);
        joined = strv_join(rep.restarted, " ");
        assert_string_equal(joined, "k1-worker-1");
        free(joined);
        assert_null(rep.untouched);
        kcli_fix_report_done(&rep);

        const char *k1[] = {"k1-ctlplane-0", "k1-worker-0", "k1-worker-1"};
        for (size_t i = 0; i < ELEMENTSOF(k1); i++) {
                d = virDomainLookupByName(conn, k1[i]);
                char *x = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
                assert_true(kcli_xml_video_is_virtio(x));
                free(x);
                virDomainFree(d);
        }
        d = virDomainLookupByName(conn, "k1-worker-1");
        assert_int_equal(virDomainIsActive(d), 1);
        char *live = virDomainGetXMLDesc(d, 0);
        assert_true(kcli_xml_video_is_virtio(live));
        free(live);
        int id = virDomainGetID(d);
        virDomainFree(d);

        /* others untouched */
        d = virDomainLookupByName(conn, "k2-ctlplane-0");
        char *x = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
        assert_string_equal(x, k2_before);
        free(x);
        virDomainFree(d);
        d = virDomainLookupByName(conn, "k1-worker-9");
        x = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
        assert_string_equal(x, k9_before);
        free(x);
        virDomainFree(d);

        /* second run: nothing redefined or restarted */
        assert_int_equal(kcli_fix_domains(&never, conn, "k1", 1, &rep), 0);
        assert_null(rep.redefined);
        assert_null(rep.restarted);
        assert_int_equal(strv_length(rep.untouched), 3);
        kcli_fix_report_done(&rep);
        d = virDomainLookupByName(conn, "k1-worker-1");
        assert_int_equal((int)virDomainGetID(d), id);
        virDomainFree(d);

        /* a cluster with no domain is an error, not a silent success */
        assert_int_equal(kcli_fix_domains(&never, conn, "nothere", 1, &rep), -ENOENT);

        free(k2_before);
        free(k9_before);
        virConnectClose(conn);
}

int main(void)
{
        return run_plain_tests(test_params, test_bootstrap_command, test_xml_edit, test_membership,
                               test_fix_on_test_driver);
}
