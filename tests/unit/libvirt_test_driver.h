/* Defining objects in libvirt's in-process test driver (test:///default), so
 * that unit tests check the XML we build against a real libvirt parser: what
 * it accepts and what it serializes back. Include after <cmocka.h>. */
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/* Defines the domain xml (virDomainDefineXMLFlags' flags) and returns
 * libvirt's own XML of it (caller frees); a refusal fails the test with
 * libvirt's message. */
static inline char *test_driver_domain_xml(const char *xml, unsigned flags)
{
        virConnectPtr c = virConnectOpen("test:///default");
        assert_non_null(c);
        virDomainPtr d = virDomainDefineXMLFlags(c, xml, flags);
        if (!d)
                fail_msg("libvirt refused the domain: %s\n%s", virGetLastErrorMessage(), xml);
        char *back = virDomainGetXMLDesc(d, 0);
        assert_non_null(back);
        virDomainUndefine(d);
        virDomainFree(d);
        virConnectClose(c);
        return back;
}
