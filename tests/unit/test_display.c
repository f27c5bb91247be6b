/* Unit tests for the display-chain proof's pure parts (e2e/display/): the
 * KubeVirt-shaped domain is accepted by a real libvirt (test driver, schema
 * validated) with the vGPU's display attributes intact; node output parsing
 * picks QEMU's own words (real output captured from a node); PPM headers;
 * Debian kernel package names; the report's verdict and JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "e2e/display/display.h"
#include "provision/vgpu/kmod.h"
#include "tests/unit/libvirt_test_driver.h"
#include "tests/unit/fixture_tests.h"

#define UUID "22f8eba3-4d64-4d44-8b29-0f03f94b9543"

static void quiet(void *o, virErrorPtr e)
{
        (void)o;
        (void)e;
}

static void test_domain_xml_is_accepted_by_libvirt(void **state)
{
        char *xml = NULL, *back;

        (void)state;
        assert_int_equal(display_domain_xml("vgpuenv-verify-display", UUID, 128, &xml), 0);
        virSetErrorFunc(NULL, quiet);
        back = test_driver_domain_xml(xml, VIR_DOMAIN_DEFINE_VALIDATE);
        /* KubeVirt's vGPU shape survives libvirt's parser. */
        assert_non_null(strstr(back, "<hostdev mode='subsystem' type='mdev' managed='no' "
                                     "model='vfio-pci' display='on' ramfb='on'>"));
        assert_non_null(strstr(back, "<address uuid='" UUID "'/>"));
        assert_non_null(strstr(back, "<alias name='" DISPLAY_HOSTDEV_ALIAS "'/>"));
        assert_non_null(strstr(back, "<graphics type='vnc'"));
        /* Only VNC: no GL display until the hook adds one. */
        assert_null(strstr(back, "egl-headless"));
        assert_null(strstr(back, "<disk"));
        free(back);
        free(xml);
}

static void test_domain_xml_refuses_odd_input(void **state)
{
        char *xml = NULL;

        (void)state;
        assert_int_equal(display_domain_xml("a b", UUID, 128, &xml), -EINVAL);
        assert_int_equal(display_domain_xml("x", "22F8EBA3-4D64-4D44-8B29-0F03F94B9543", 128, &xml),
                         -EINVAL);
        assert_int_equal(display_domain_xml("x", UUID "'", 128, &xml), -EINVAL);
        assert_int_equal(display_domain_xml("x", "not-a-uuid", 128, &xml), -EINVAL);
        assert_int_equal(display_domain_xml("x", UUID, 8, &xml), -EINVAL);
        assert_null(xml);
}

/* What node-check.sh printed for KubeVirt's domain on a node (libvirt 9.0,
 * QEMU 7.2), shortened only in the -device JSON. */
static const char start_output[] =
    "result=failed\n"
    "virsh: error: Failed to start domain 'vgpuenv-verify-display'\n"
    "virsh: error: internal error: process exited while connecting to monitor: "
    "2026-11-21T13:06:10.295565Z qemu-system-x86_64: -device "
    "{\"driver\":\"vfio-pci-nohotplug\",\"id\":\"ua-gpu-gpu1\",\"display\":\"on\"}: warning: "
    "vfio " UUID ": Could not enable error recovery for the device\n"
    "virsh: 2026-11-21T13:06:10.306227Z qemu-system-x86_64: -device "
    "{\"driver\":\"vfio-pci-nohotplug\",\"id\":\"ua-gpu-gpu1\",\"display\":\"on\"}: vfio " UUID
    ": vfio-display-dmabuf: opengl not available\n"
    "qemu-log: 2026-11-21 13:06:09.608+0000: starting up libvirt version: 9.0.0\n"
    "qemu-log: 2026-11-21T13:06:10.295565Z qemu-system-x86_64: -device "
    "{\"driver\":\"vfio-pci-nohotplug\"}: warning: vfio " UUID
    ": Could not enable error recovery for the device\n"
    "qemu-log: 2026-11-21T13:06:10.306227Z qemu-system-x86_64: -device "
    "{\"driver\":\"vfio-pci-nohotplug\"}: vfio " UUID
    ": vfio-display-dmabuf: opengl not available\n"
    "qemu-log: 2026-11-21 13:06:10.372+0000: shutting down, reason=failed\n";

static void test_observations(void **state)
{
        char *v;

        (void)state;
        v = kv_get(start_output, "result");
        assert_string_equal(v, "failed");
        free(v);
        assert_null(kv_get(start_output, "resul"));
        assert_null(kv_get(start_output, "state"));

        /* QEMU's message, without timestamp and -device JSON. */
        v = line_with(start_output, "opengl not available");
        assert_string_equal(v, "qemu-system-x86_64: vfio " UUID
                               ": vfio-display-dmabuf: opengl not available");
        free(v);
        assert_null(line_with(start_output, "Couldn't open libGL"));
        /* "result=..." is not libvirt's or QEMU's output. */
        assert_null(line_with(start_output, "result"));

        /* The reason it stopped: not the warning, not libvirt's notes. */
        v = start_error_line(start_output);
        assert_string_equal(v, "qemu-system-x86_64: vfio " UUID
                               ": vfio-display-dmabuf: opengl not available");
        free(v);
        /* libvirt refusing before QEMU ran: its error line. */
        v = start_error_line("result=failed\n"
                             "virsh: error: Failed to start domain 'x'\n"
                             "virsh: error: Path '/dev/dri/renderD128' is not accessible: No such "
                             "file or directory\n");
        assert_string_equal(v, "Path '/dev/dri/renderD128' is not accessible: No such file or "
                               "directory");
        free(v);
        assert_null(start_error_line("result=started\n"));
}

static void test_ppm_header(void **state)
{
        char img[64];
        unsigned w, h;
        size_t off;

        (void)state;
        memset(img, 0, sizeof(img));
        memcpy(img, "P6\n2 3\n255\n", 11);
        assert_int_equal(ppm_parse_header(img, 11 + 18, &w, &h, &off), 0);
        assert_int_equal(w, 2);
        assert_int_equal(h, 3);
        assert_int_equal(off, 11);
        /* One byte short of the pixels. */
        assert_int_equal(ppm_parse_header(img, 11 + 17, &w, &h, &off), -EBADMSG);
        /* Comments and any whitespace are allowed. */
        memcpy(img, "P6 # qemu\n2\t3 255\n", 18);
        assert_int_equal(ppm_parse_header(img, 18 + 18, &w, &h, &off), 0);
        assert_int_equal(off, 18);
        assert_int_equal(ppm_parse_header("P5\n2 3\n255\n", 11, &w, &h, &off), -EBADMSG);
        assert_int_equal(ppm_parse_header("P6\n0 3\n255\n", 11, &w, &h, &off), -EBADMSG);
        assert_int_equal(ppm_parse_header("P6\n2 3\n65535\n", 13, &w, &h, &off), -EBADMSG);
        assert_int_equal(ppm_parse_header("P6\n9999999 3\n255\n", 17, &w, &h, &off), -EBADMSG);
        assert_int_equal(ppm_parse_header("P6\n2", 4, &w, &h, &off), -EBADMSG);
        assert_int_equal(ppm_parse_header("", 0, &w, &h, &off), -EBADMSG);
}

static void test_debian_packages(void **state)
{
        char **p = NULL;

        (void)state;
        static const struct {
                const char *kernel, *packages[5];
        } debian[] = {
            {"6.1.0-50-amd64",
             {"linux-headers-6.1.0-50-amd64", "linux-headers-6.1.0-50-common", "linux-kbuild-6.1",
              "linux-source-6.1"}},
            {"6.1.0-50-cloud-amd64",
             {"linux-headers-6.1.0-50-cloud-amd64", "linux-headers-6.1.0-50-common",
              "linux-kbuild-6.1", "linux-source-6.1"}},
            /* Debian 13 names its releases after the upstream version. */
            {"6.12.117+deb13-amd64",
             {"linux-headers-6.12.117+deb13-amd64", "linux-headers-6.12.117+deb13-common",
              "linux-kbuild-6.12.117+deb13", "linux-source-6.12"}},
        };
        for (size_t i = 0; i < ELEMENTSOF(debian); i++) {
                assert_int_equal(mbochs_debian_packages(debian[i].kernel, &p), 0);
                size_t n = 0;
                for (; debian[i].packages[n]; n++)
                        assert_string_equal(p[n], debian[i].packages[n]);
                assert_null(p[n]);
                strv_free(p);
                p = NULL;
        }
        assert_int_equal(kmod_debian_packages("6.12.117+deb13-amd64", false, &p), 0);
        assert_null(p[3]);
        strv_free(p);
        p = NULL;
        assert_int_equal(mbochs_debian_packages("6.12.117+deb13-", &p), -EINVAL);
        /* Not Debian's: a custom kernel, RHEL's, or something odd. */
        assert_int_equal(mbochs_debian_packages("6.18.44-fc-v669", &p), -EINVAL);
        assert_int_equal(mbochs_debian_packages("5.14.0-427.el9.x86_64", &p), -EINVAL);
        assert_int_equal(mbochs_debian_packages("6.1.0-50-", &p), -EINVAL);
        assert_int_equal(mbochs_debian_packages("6.1.0-50-amd64/../x", &p), -EINVAL);
        assert_int_equal(mbochs_debian_packages("", &p), -EINVAL);
        assert_null(p);
}

static void test_report(void **state)
{
        struct display_report r = {0};
        struct display_check *a, *b;
        cJSON *j;

        (void)state;
        assert_false(report_ok(&r)); /* nothing checked is not a pass */
        a = report_add(&r, "one", "first", "x", "why one");
        assert_non_null(a);
        report_set_observed(a, true, 1.25, "saw %s", "x");
        assert_true(report_ok(&r));
        b = report_add(&r, "two", "second", "y", "why two");
        assert_non_null(b);
        /* Added but never run: the verdict is not PASS. */
        assert_false(report_ok(&r));
        j = report_json(&r);
        assert_non_null(j);
        cJSON *checks = cJSON_GetObjectItem(j, "checks");
        assert_int_equal(cJSON_GetArraySize(checks), 2);
        cJSON *c0 = cJSON_GetArrayItem(checks, 0), *c1 = cJSON_GetArrayItem(checks, 1);
        assert_string_equal(cJSON_GetObjectItem(c0, "observed")->valuestring, "saw x");
        assert_string_equal(cJSON_GetObjectItem(c0, "result")->valuestring, "pass");
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(c1, "observed")));
        assert_string_equal(cJSON_GetObjectItem(c1, "result")->valuestring, "skipped");
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "ok")));
        cJSON_Delete(j);
        report_set_observed(&r.checks[1], false, 0.5, "other");
        assert_false(report_ok(&r));
        report_done(&r);
}

int main(void)
{
        return run_plain_tests(test_domain_xml_is_accepted_by_libvirt,
                               test_domain_xml_refuses_odd_input, test_observations,
                               test_ppm_header, test_debian_packages, test_report);
}
