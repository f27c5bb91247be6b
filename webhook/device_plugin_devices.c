/* The render-node inventory of the device plugin (see device_plugin_devices.h). */
#include "webhook/device_plugin_devices.h"

#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"

void dp_inventory_done(struct dp_inventory *inv)
{
        for (size_t i = 0; i < inv->n_nodes; i++) {
                free(inv->nodes[i].name);
                free(inv->nodes[i].host_path);
        }
        free(inv->nodes);
        inv->nodes = NULL;
        inv->n_nodes = 0;
}

char *dp_inventory_watch_dir(const struct dp_inventory *inv)
{
        const char *g = inv->cfg->device_glob, *slash = strrchr(g, '/');
        return strdup_printf("%s%.*s", inv->cfg->device_root, (int)(slash == g ? 1 : slash - g), g);
}

/* Device IDs are "<name>-<index>" and at most 63 characters (api.proto);
 * names outside this set would need escaping nobody reads. */
static bool name_usable(const char *name)
{
        return *name && strlen(name) <= 48 &&
               !name[strspn(name,
                            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")];
}

static struct dp_node *find_node(struct dp_inventory *inv, const char *name)
{
        for (size_t i = 0; i < inv->n_nodes; i++)
                if (streq(inv->nodes[i].name, name))
                        return &inv->nodes[i];
        return NULL;
}

static int cmp_node(const void *a, const void *b)
{
        return strcmp(((const struct dp_node *)a)->name, ((const struct dp_node *)b)->name);
}

static int add_node(struct dp_inventory *inv, const char *name, const char *host_path)
{
        struct dp_node *n = realloc(inv->nodes, (inv->n_nodes + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        inv->nodes = n;
        n[inv->n_nodes] = (struct dp_node){.name = strdup(name), .host_path = strdup(host_path)};
        if (!n[inv->n_nodes].name || !n[inv->n_nodes].host_path) {
                free(n[inv->n_nodes].name);
                free(n[inv->n_nodes].host_path);
                return -ENOMEM;
        }
        inv->n_nodes++;
        return 0;
}

/* One glob match: a character device counts as a render node present. */
static int take_match(struct dp_inventory *inv, const char *seen, bool *changed)
{
        struct stat st;
        size_t root = strlen(inv->cfg->device_root);
        const char *host_path = seen + root, *name = strrchr(seen, '/') + 1;

        if (stat(seen, &st) < 0 || !S_ISCHR(st.st_mode) || !name_usable(name))
                return 0;
        struct dp_node *n = find_node(inv, name);
        if (!n) {
                int r = add_node(inv, name, host_path);
                if (r < 0)
                        return r;
                log_info("render node %s appeared: %u devices", host_path, inv->cfg->shares);
                n = &inv->nodes[inv->n_nodes - 1];
                *changed = true;
        } else if (!n->present) {
                log_info("render node %s is back: its devices are Healthy", host_path);
                *changed = true;
        }
        n->seen = true;
        return 0;
}

int dp_inventory_scan(struct dp_inventory *inv)
{
        _cleanup_free_ char *pattern =
            strdup_printf("%s%s", inv->cfg->device_root, inv->cfg->device_glob);
        glob_t g = {};
        bool changed = false;
        int r = 0;

        if (!pattern)
                return -ENOMEM;
        int gr = glob(pattern, GLOB_NOSORT, NULL, &g);
        if (gr != 0 && gr != GLOB_NOMATCH) {
                globfree(&g);
                return log_error_errno(gr == GLOB_NOSPACE ? -ENOMEM : -EIO, "cannot list %s",
                                       pattern);
        }
        for (size_t i = 0; i < inv->n_nodes; i++)
                inv->nodes[i].seen = false;
        for (size_t i = 0; r >= 0 && i < g.gl_pathc; i++)
                r = take_match(inv, g.gl_pathv[i], &changed);
        globfree(&g);
        if (r < 0)
                return r;
        for (size_t i = 0; i < inv->n_nodes; i++) {
                struct dp_node *n = &inv->nodes[i];
                if (n->present && !n->seen) {
                        log_warning("render node %s is gone: its devices are Unhealthy",
                                    n->host_path);
                        changed = true;
                }
                n->present = n->seen;
        }
        qsort(inv->nodes, inv->n_nodes, sizeof(*inv->nodes), cmp_node);
        return changed ? 1 : 0;
}

const struct dp_node *dp_inventory_find(const struct dp_inventory *inv, const char *id)
{
        const char *dash = strrchr(id, '-'), *digits = dash ? dash + 1 : "";
        unsigned long long idx;
        /* Exactly the IDs we list: decimal, no sign, space or leading zero. */
        if (!*digits || digits[strspn(digits, "0123456789")] || (digits[0] == '0' && digits[1]) ||
            parse_uint64(digits, 0, inv->cfg->shares - 1, &idx) < 0)
                return NULL;
        for (size_t i = 0; i < inv->n_nodes; i++) {
                size_t n = strlen(inv->nodes[i].name);
                if ((size_t)(dash - id) == n && strneq(id, inv->nodes[i].name, n))
                        return &inv->nodes[i];
        }
        return NULL;
}
