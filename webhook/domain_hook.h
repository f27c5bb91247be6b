/* The onDefineDomain transformation in C with libxml2: the same rule as the
 * shipped shell hook (webhook/hook/onDefineDomain), written against a real
 * XML parser so the tests can check the script's text surgery against it,
 * and so C callers (the display proof) can apply it without a shell. */
#pragma once

#include <stddef.h>

/* Adds <graphics type="egl-headless"><gl rendernode="RENDER_NODE"/></graphics>
 * inside <devices> (created when missing) unless a graphics element of type
 * egl-headless is there already. *ret gets the serialized document (caller
 * frees). Returns 1 when the display was added, 0 when it was already
 * present, -EINVAL for a document that is not a libvirt domain. */
int domain_add_egl_headless(const char *xml, size_t size, const char *render_node, char **ret);
