/* Unit tests for the libxml2 version of the onDefineDomain rule
 * (webhook/domain_hook.c): added inside <devices>, once, <devices> created
 * when missing, other graphics kept, non-domains refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "webhook/domain_hook.h"
#include "tests/unit/fixture_tests.h"

#define RN "/dev/dri/renderD128"
#define EGL "<graphics type=\"egl-headless\"><gl rendernode=\"" RN "\"/></graphics>"

static size_t count(const char *s, const char *needle)
{
        size_t n = 0;
        for (const char *p = s; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

static void test_adds_once(void **state)
{
        (void)state;
        const char *in = "<domain type=\"qemu\"><name>x</name><devices><graphics type=\"vnc\"/>"
                         "<hostdev mode=\"subsystem\" type=\"mdev\" model=\"vfio-pci\" "
                         "display=\"on\"/></devices></domain>";
        char *out = NULL, *again = NULL;
        assert_int_equal(domain_add_egl_headless(in, strlen(in), RN, &out), 1);
        assert_non_null(strstr(out, "<graphics type=\"vnc\"/>"));
        assert_non_null(strstr(out, "display=\"on\""));
        assert_non_null(strstr(out, EGL "</devices>"));
        assert_int_equal(domain_add_egl_headless(out, strlen(out), RN, &again), 0);
        assert_string_equal(out, again);
        assert_int_equal(count(again, "egl-headless"), 1);
        free(out);
        free(again);
}

static void test_existing_kept(void **state)
{
        (void)state;
        const char *in =
            "<domain><devices><graphics type='egl-headless'><gl rendernode='/dev/dri/renderD129'/>"
            "</graphics></devices></domain>";
        char *out = NULL;
        assert_int_equal(domain_add_egl_headless(in, strlen(in), RN, &out), 0);
        assert_non_null(strstr(out, "renderD129"));
        assert_null(strstr(out, "renderD128"));
        free(out);
}

static void test_devices_created(void **state)
{
        (void)state;
        const char *in = "<domain><name>x</name></domain>";
        char *out = NULL;
        assert_int_equal(domain_add_egl_headless(in, strlen(in), RN, &out), 1);
        assert_non_null(strstr(out, "<devices>" EGL "</devices>"));
        free(out);
}

static void test_not_a_domain(void **state)
{
        (void)state;
        char *out = NULL;
        assert_int_equal(domain_add_egl_headless("<pool/>", 7, RN, &out), -EINVAL);
        assert_int_equal(domain_add_egl_headless("not xml", 7, RN, &out), -EINVAL);
        assert_int_equal(domain_add_egl_headless("", 0, RN, &out), -EINVAL);
}

int main(void)
{
        return run_plain_tests(test_adds_once, test_existing_kept, test_devices_created,
                               test_not_a_domain);
}
