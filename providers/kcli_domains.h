/* The libvirt side of the kcli provider: which domains belong to a kcli
 * cluster, and giving them a virtio-gpu video device.
 *
 * kcli has no keyword for the video model, so after `kcli create kube` we
 * edit each node's domain XML (libxml2), redefine it and restart the node
 * if it runs. Only domains of the named cluster are touched, and a domain
 * that already has virtio video (in its persistent and live definition) is
 * neither redefined nor restarted. */
#pragma once

#include <libvirt/libvirt.h>
#include <stdbool.h>

#include "common/cancel.h"

/* kcli marks its VMs with <metadata><kvirt:info xmlns:kvirt="kvirt">
 * <kvirt:kube>NAME</kvirt:kube><kvirt:plan>NAME</kvirt:plan>... and names
 * kube nodes NAME-ctlplane-N / NAME-worker-N. The metadata decides when
 * present; the name pattern only for domains without kcli metadata. */
bool kcli_domain_is_of_cluster(const char *xml, const char *domain_name, const char *cluster);

/* Rewrite every <video> model to virtio (dropping vram/vgamem/ram/heads,
 * which only the old models take), or add one when there is none. Returns 1
 * and *ret_xml when something changed, 0 (and *ret_xml NULL) when the XML
 * already has only virtio video, -errno on unparsable XML. */
int kcli_xml_video_virtio(const char *xml, char **ret_xml);

/* Is every video model of this XML virtio? (false when there is none) */
bool kcli_xml_video_is_virtio(const char *xml);

/* Names of the cluster's domains on conn (sorted). */
int kcli_cluster_domains(virConnectPtr conn, const char *cluster, char ***ret_names);

struct kcli_fix_report {
        char **redefined; /* XML changed and redefined */
        char **restarted; /* were running and were restarted */
        char **untouched; /* already virtio */
};
void kcli_fix_report_done(struct kcli_fix_report *r);

/* Fix the video of every domain of the cluster. shutdown_timeout: seconds
 * to wait for a clean ACPI shutdown before destroying the domain. */
int kcli_fix_domains(const struct cancel *cancel, virConnectPtr conn, const char *cluster,
                     double shutdown_timeout, struct kcli_fix_report *report);
