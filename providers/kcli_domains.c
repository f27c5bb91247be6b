/* libvirt and libxml2 work of the kcli provider (see providers/kcli_domains.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "common/log.h"
#include "common/util.h"
#include "providers/kcli_domains.h"

#define KVIRT_NS "kvirt"

DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDocPtr, xmlFreeDoc)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathContextPtr, xmlXPathFreeContext)
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathObjectPtr, xmlXPathFreeObject)
DEFINE_TRIVIAL_CLEANUP_FUNC(virDomainPtr, virDomainFree)

static xmlDocPtr parse_xml(const char *xml)
{
        /* No network, no entities: domain XML comes from libvirt, but treat
         * it as data. */
        return xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                             XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
                                 XML_PARSE_NOWARNING);
}

/* Text of the first node matching expr, or NULL. */
static char *xpath_text(xmlXPathContextPtr xc, const char *expr)
{
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr o =
            xmlXPathEvalExpression((const xmlChar *)expr, xc);
        if (!o || !o->nodesetval || o->nodesetval->nodeNr == 0)
                return NULL;
        xmlChar *t = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
        if (!t)
                return NULL;
        char *s = strdup((const char *)t);
        xmlFree(t);
        return s;
}

static bool name_matches(const char *domain_name, const char *cluster)
{
        if (!startswith(domain_name, cluster) || domain_name[strlen(cluster)] != '-')
                return false;
        const char *rest = domain_name + strlen(cluster) + 1;
        const char *num;
        if (startswith(rest, "ctlplane-"))
                num = rest + strlen("ctlplane-");
        else if (startswith(rest, "worker-"))
                num = rest + strlen("worker-");
        else
                return false;
        return all_digits(num);
}

bool kcli_domain_is_of_cluster(const char *xml, const char *domain_name, const char *cluster)
{
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = parse_xml(xml);
        if (!doc)
                return false;
        _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr xc = xmlXPathNewContext(doc);
        if (!xc || xmlXPathRegisterNs(xc, (const xmlChar *)"k", (const xmlChar *)KVIRT_NS) != 0)
                return false;
        _cleanup_free_ char *kube = xpath_text(xc, "/domain/metadata/k:info/k:kube");
        _cleanup_free_ char *plan = xpath_text(xc, "/domain/metadata/k:info/k:plan");
        if (!isempty(kube))
                return streq(kube, cluster);
        if (!isempty(plan))
                return streq(plan, cluster);
        return name_matches(domain_name, cluster);
}

static xmlNodePtr child_element(xmlNodePtr parent, const char *name)
{
        for (xmlNodePtr c = parent->children; c; c = c->next)
                if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, (const xmlChar *)name))
                        return c;
        return NULL;
}

static bool model_is_virtio(xmlNodePtr model)
{
        xmlChar *type = xmlGetProp(model, (const xmlChar *)"type");
        bool r = type && xmlStrEqual(type, (const xmlChar *)"virtio");
        xmlFree(type);
        return r;
}

/* Walk the <video> elements; with fix, rewrite them. Returns the number of
 * elements that were not virtio (0: nothing to do), -1 without <devices>. */
static int video_pass(xmlDocPtr doc, bool fix, int *ret_count)
{
        xmlNodePtr root = xmlDocGetRootElement(doc);
        xmlNodePtr devices = root ? child_element(root, "devices") : NULL;
        if (!devices)
                return -1;
        int bad = 0, count = 0;
        for (xmlNodePtr v = devices->children; v; v = v->next) {
                if (v->type != XML_ELEMENT_NODE || !xmlStrEqual(v->name, (const xmlChar *)"video"))
                        continue;
                count++;
                xmlNodePtr model = child_element(v, "model");
                if (model && model_is_virtio(model))
                        continue;
                bad++;
                if (!fix)
                        continue;
                if (!model)
                        model = xmlNewChild(v, NULL, (const xmlChar *)"model", NULL);
                xmlSetProp(model, (const xmlChar *)"type", (const xmlChar *)"virtio");
                /* Sizes of the emulated VGA framebuffer mean nothing to
                 * virtio-gpu and libvirt rejects some of them for it. */
                static const char *const drop[] = {"vram", "vram64", "vgamem", "ram", "heads"};
                for (size_t i = 0; i < ELEMENTSOF(drop); i++)
                        xmlUnsetProp(model, (const xmlChar *)drop[i]);
        }
        if (count == 0 && fix) {
                xmlNodePtr v = xmlNewChild(devices, NULL, (const xmlChar *)"video", NULL);
                xmlNodePtr m = xmlNewChild(v, NULL, (const xmlChar *)"model", NULL);
                xmlSetProp(m, (const xmlChar *)"type", (const xmlChar *)"virtio");
        }
        if (ret_count)
                *ret_count = count;
        return count == 0 ? 1 : bad;
}

bool kcli_xml_video_is_virtio(const char *xml)
{
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = parse_xml(xml);
        int count = 0;
        return doc && video_pass(doc, false, &count) == 0 && count > 0;
}

int kcli_xml_video_virtio(const char *xml, char **ret_xml)
{
        *ret_xml = NULL;
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = parse_xml(xml);
        if (!doc)
                return -EINVAL;
        int r = video_pass(doc, false, NULL);
        if (r < 0)
                return -EINVAL;
        if (r == 0)
                return 0;
        video_pass(doc, true, NULL);
        xmlChar *out = NULL;
        int size = 0;
        xmlDocDumpFormatMemory(doc, &out, &size, 1);
        if (!out)
                return -ENOMEM;
        *ret_xml = strdup((const char *)out);
        xmlFree(out);
        return *ret_xml ? 1 : -ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int kcli_cluster_domains(virConnectPtr conn, const char *cluster, char ***ret_names)
{
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(conn, &doms, 0);
        if (n < 0)
                return log_error_errno(EIO, "listing libvirt domains failed: %s",
                                       virGetLastErrorMessage());
        _cleanup_strv_free_ char **names = NULL;
        int r = 0;
        for (int i = 0; i < n; i++) {
                const char *name = virDomainGetName(doms[i]);
                char *xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
                if (xml && name && kcli_domain_is_of_cluster(xml, name, cluster) &&
                    strv_extend(&names, name) < 0)
                        r = -ENOMEM;
                free(xml);
                virDomainFree(doms[i]);
        }
        free(doms);
        if (r < 0)
                return log_error_errno(r, "out of memory");
        if (names)
                qsort(names, strv_length(names), sizeof(char *), cmp_str);
        *ret_names = TAKE_PTR(names);
        return 0;
}

void kcli_fix_report_done(struct kcli_fix_report *r)
{
        strv_free(r->redefined);
        strv_free(r->restarted);
        strv_free(r->untouched);
        *r = (struct kcli_fix_report){};
}

/* Clean shutdown first (the guest flushes its disks), destroy when the
 * guest does not react within the deadline, then start again with the new
 * definition. */
static int restart_domain(const struct cancel *cancel, virDomainPtr dom, const char *name,
                          double shutdown_timeout)
{
        if (virDomainShutdown(dom) < 0)
                log_debug("%s: ACPI shutdown request failed: %s", name, virGetLastErrorMessage());
        double deadline = now_seconds() + shutdown_timeout;
        while (virDomainIsActive(dom) == 1 && now_seconds() < deadline &&
               cancel_sleep(cancel, 0.2) == 0)
                ;
        if (virDomainIsActive(dom) == 1) {
                log_notice("%s: no clean shutdown within %.0fs, stopping it", name,
                           shutdown_timeout);
                if (virDomainDestroy(dom) < 0)
                        return log_error_errno(EIO, "%s: could not stop the domain: %s", name,
                                               virGetLastErrorMessage());
        }
        if (cancel_check(cancel) < 0)
                return cancel_check(cancel);
        if (virDomainCreate(dom) < 0)
                return log_error_errno(EIO, "%s: could not start the domain again: %s", name,
                                       virGetLastErrorMessage());
        return 0;
}

int kcli_fix_domains(const struct cancel *cancel, virConnectPtr conn, const char *cluster,
                     double shutdown_timeout, struct kcli_fix_report *report)
{
        _cleanup_strv_free_ char **names = NULL;
        int r = kcli_cluster_domains(conn, cluster, &names);
        if (r < 0)
                return r;
        if (!names) {
                _cleanup_free_ char *uri = virConnectGetURI(conn);
                return log_error_errno(ENOENT,
                                       "no libvirt domain of kcli cluster %s found on %s "
                                       "(kcli.uri must be the host kcli created the VMs on)",
                                       cluster, uri ? uri : "?");
        }
        for (size_t i = 0; names[i]; i++) {
                if (cancel_check(cancel) < 0)
                        return cancel_check(cancel);
                _cleanup_(virDomainFreep) virDomainPtr dom = virDomainLookupByName(conn, names[i]);
                if (!dom)
                        return log_error_errno(ENOENT, "%s: domain disappeared: %s", names[i],
                                               virGetLastErrorMessage());
                _cleanup_free_ char *xml =
                    virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
                if (!xml)
                        return log_error_errno(EIO, "%s: cannot read the domain XML: %s", names[i],
                                               virGetLastErrorMessage());
                _cleanup_free_ char *fixed = NULL;
                r = kcli_xml_video_virtio(xml, &fixed);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot edit the domain XML", names[i]);
                bool active = virDomainIsActive(dom) == 1;
                bool live_ok = true;
                if (active) {
                        /* A previous run may have redefined it and died
                         * before the restart: the live definition tells. */
                        _cleanup_free_ char *live = virDomainGetXMLDesc(dom, 0);
                        live_ok = live && kcli_xml_video_is_virtio(live);
                }
                if (r == 0 && live_ok) {
                        strv_extend(&report->untouched, names[i]);
                        continue;
                }
                if (r > 0) {
                        _cleanup_(virDomainFreep) virDomainPtr nd = virDomainDefineXML(conn, fixed);
                        if (!nd)
                                return log_error_errno(EIO,
                                                       "%s: redefining with virtio video "
                                                       "failed: %s",
                                                       names[i], virGetLastErrorMessage());
                        strv_extend(&report->redefined, names[i]);
                        log_info("%s: video model set to virtio", names[i]);
                }
                if (active) {
                        r = restart_domain(cancel, dom, names[i], shutdown_timeout);
                        if (r < 0)
                                return r;
                        strv_extend(&report->restarted, names[i]);
                        log_info("%s: restarted with virtio video", names[i]);
                }
        }
        return 0;
}
