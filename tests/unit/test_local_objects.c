/* Unit tests for the local provider's object handling
 * (providers/local_objects.c) against libvirt's in-process test driver: an
 * object it defines is recorded, one carrying our mark is adopted, one
 * without it is refused and never removed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "providers/local_objects.h"
#include "providers/local_xml.h"
#include "tests/unit/fixture_tests.h"

static const char foreign_domain[] = "<domain type='test'><name>foreign</name>"
                                     "<memory>1024</memory><os><type>hvm</type></os></domain>";

static void test_network_defined_adopted_removed(void **state)
{
        (void)state;
        char dir[] = "/tmp/test_local_objects.XXXXXX";
        struct config c;
        struct state st = {0};
        virConnectPtr conn = NULL;

        assert_non_null(mkdtemp(dir));
        config_init_defaults(&c);
        free(c.name);
        c.name = strdup("unit");
        free(c.local.uri);
        c.local.uri = strdup("test:///default");
        _cleanup_free_ char *net = local_network_name(&c);
        assert_int_equal(state_open(&st, dir, "unit", "local"), 0);
        assert_int_equal(local_connect(&c, &conn), 0);

        /* Defined and recorded, then adopted by a second run. */
        assert_int_equal(local_ensure_network(conn, &c, &st), 0);
        assert_true(state_has_resource(&st, RES_NETWORK, net));
        state_drop_resource(&st, RES_NETWORK, net);
        assert_int_equal(local_ensure_network(conn, &c, &st), 0);
        assert_true(state_has_resource(&st, RES_NETWORK, net));
        /* Another cluster's mark is not ours. */
        free(c.name);
        c.name = strdup("other");
        assert_int_equal(local_remove(conn, &c, RES_NETWORK, net), -EPERM);
        free(c.name);
        c.name = strdup("unit");
        assert_int_equal(local_remove(conn, &c, RES_NETWORK, net), 0);
        assert_null(virNetworkLookupByName(conn, net));

        /* A domain without our mark: refused, left alone. */
        virDomainPtr d = virDomainDefineXML(conn, foreign_domain);
        assert_non_null(d);
        bool started;
        assert_int_equal(local_ensure_domain(conn, &c, "foreign", foreign_domain, &st, &started),
                         -EEXIST);
        assert_false(state_has_resource(&st, RES_DOMAIN, "foreign"));
        assert_int_equal(local_remove(conn, &c, RES_DOMAIN, "foreign"), -EPERM);
        virDomainUndefine(d);
        virDomainFree(d);

        virConnectClose(conn);
        state_done(&st);
        config_done(&c);
        rm_rf(dir);
}

int main(void)
{
        return run_plain_tests(test_network_defined_adopted_removed);
}
