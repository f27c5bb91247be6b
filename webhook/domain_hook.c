/* The onDefineDomain transformation with libxml2 (see domain_hook.h). */
#include "webhook/domain_hook.h"

#include <errno.h>
#include <stdbool.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

static int is_element(const xmlNode *n, const char *name)
{
        return n && n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST name);
}

static xmlNode *child(xmlNode *parent, const char *name)
{
        for (xmlNode *c = parent->children; c; c = c->next)
                if (is_element(c, name))
                        return c;
        return NULL;
}

int domain_add_egl_headless(const char *xml, size_t size, const char *render_node, char **ret)
{
        /* No network, no entity expansion: the input comes from outside. */
        xmlDoc *doc = xmlReadMemory(xml, (int)size, "domain.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        int r = 0;

        if (!doc)
                return -EINVAL;
        xmlNode *root = xmlDocGetRootElement(doc);
        if (!is_element(root, "domain")) {
                xmlFreeDoc(doc);
                return -EINVAL;
        }
        xmlNode *devices = child(root, "devices");
        bool have = false;
        if (devices)
                for (xmlNode *c = devices->children; c; c = c->next) {
                        if (!is_element(c, "graphics"))
                                continue;
                        xmlChar *type = xmlGetProp(c, BAD_CAST "type");
                        if (type && xmlStrEqual(type, BAD_CAST "egl-headless"))
                                have = true;
                        xmlFree(type);
                }
        if (!have) {
                if (!devices)
                        devices = xmlNewChild(root, NULL, BAD_CAST "devices", NULL);
                xmlNode *g = devices ? xmlNewChild(devices, NULL, BAD_CAST "graphics", NULL) : NULL;
                xmlNode *gl = g ? xmlNewChild(g, NULL, BAD_CAST "gl", NULL) : NULL;
                if (!gl || !xmlNewProp(g, BAD_CAST "type", BAD_CAST "egl-headless") ||
                    !xmlNewProp(gl, BAD_CAST "rendernode", BAD_CAST render_node)) {
                        xmlFreeDoc(doc);
                        return -ENOMEM;
                }
                r = 1;
        }
        xmlChar *out = NULL;
        int len = 0;
        xmlDocDumpMemory(doc, &out, &len);
        xmlFreeDoc(doc);
        if (!out)
                return -ENOMEM;
        *ret = strndup((const char *)out, (size_t)len);
        xmlFree(out);
        return *ret ? r : -ENOMEM;
}
