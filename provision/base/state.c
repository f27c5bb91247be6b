/* The cluster state file (state.h): what `up` created, written atomically
 * after every change so a crash or kill -9 never loses track of an object. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "provision/base/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "provision/base/ssh.h"

#define STATE_FILE "state.json"

/* 128 random bits: unique per process so a rollback can tell this run's
 * objects from those of an earlier run that crashed. */
static int new_run_id(char **ret)
{
        unsigned char b[16];
        _cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        size_t got = 0;
        char *s;

        if (fd < 0)
                return negative_errno();
        while (got < sizeof(b)) {
                ssize_t k = read(fd, b + got, sizeof(b) - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? negative_errno() : -EIO;
                got += (size_t)k;
        }
        s = malloc(2 * sizeof(b) + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof(b); i++)
                sprintf(s + 2 * i, "%02x", b[i]);
        *ret = s;
        return 0;
}

static const char *get_str(const cJSON *o, const char *key)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Replace (or add) a string member. */
static int set_str(cJSON *o, const char *key, const char *value)
{
        cJSON *v = cJSON_CreateString(value);

        if (!v)
                return -ENOMEM;
        if (cJSON_GetObjectItemCaseSensitive(o, key))
                return cJSON_ReplaceItemInObjectCaseSensitive(o, key, v) ? 0 : -ENOMEM;
        return cJSON_AddItemToObject(o, key, v) ? 0 : -ENOMEM;
}

/* The array member key, created when missing (a dry-run state starts as {}). */
static cJSON *array_of(cJSON *root, const char *key)
{
        cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);

        if (cJSON_IsArray(a))
                return a;
        if (a)
                return NULL;
        return cJSON_AddArrayToObject(root, key);
}

static int load(struct state *s, const char *cluster, const char *provider)
{
        _cleanup_free_ char *text = NULL;
        const char *c, *p;
        int r = read_full_file(s->path, &text, NULL);

        if (r == -ENOENT) {
                s->root = cJSON_CreateObject();
                if (!s->root || set_str(s->root, "cluster", cluster) < 0 ||
                    set_str(s->root, "provider", provider) < 0 || !array_of(s->root, "resources") ||
                    !array_of(s->root, "nodes") ||
                    !cJSON_AddObjectToObject(s->root, "provider_data"))
                        return -ENOMEM;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "cannot read the state file %s: %s", s->path,
                                       strerror(-r));
        s->root = cJSON_Parse(text);
        if (!cJSON_IsObject(s->root) ||
            (cJSON_GetObjectItemCaseSensitive(s->root, "resources") &&
             !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(s->root, "resources"))) ||
            (cJSON_GetObjectItemCaseSensitive(s->root, "nodes") &&
             !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(s->root, "nodes"))))
                return log_error_errno(EBADMSG,
                                       "the state file %s is corrupt (not a vgpuenv state JSON "
                                       "object); objects it listed may still exist: check with "
                                       "virsh, then move the file aside",
                                       s->path);
        c = get_str(s->root, "cluster");
        p = get_str(s->root, "provider");
        if (c && !streq(c, cluster))
                return log_error_errno(EINVAL,
                                       "the state file %s belongs to cluster '%s', not '%s'",
                                       s->path, c, cluster);
        if (p && !streq(p, provider))
                return log_error_errno(EINVAL,
                                       "cluster '%s' was brought up with provider %s (state file "
                                       "%s); bring it down with that provider before using %s",
                                       cluster, p, s->path, provider);
        if (!array_of(s->root, "resources") || !array_of(s->root, "nodes"))
                return -ENOMEM;
        if (!c && set_str(s->root, "cluster", cluster) < 0)
                return -ENOMEM;
        if (!p && set_str(s->root, "provider", provider) < 0)
                return -ENOMEM;
        return 0;
}

int state_open(struct state *s, const char *dir, const char *cluster, const char *provider)
{
        int r;

        *s = (struct state){};
        pthread_mutex_init(&s->lock, NULL);
        r = mkdir_p(dir, 0711);
        if (r < 0)
                return log_error_errno(r, "cannot create the state directory %s: %s", dir,
                                       strerror(-r));
        /* Traversable but not listable: QEMU runs as an unprivileged user and
         * must reach the node disks and console logs below it, while the
         * state file itself stays 0600. */
        if (chmod(dir, 0711) < 0)
                return log_error_errno(errno, "cannot set %s to 0711: %m", dir);
        s->path = strdup_printf("%s/%s", dir, STATE_FILE);
        if (!s->path)
                return -ENOMEM;
        r = new_run_id(&s->run_id);
        if (r < 0)
                return log_error_errno(r, "cannot read /dev/urandom for a run id: %s",
                                       strerror(-r));
        r = load(s, cluster, provider);
        if (r < 0)
                return r;
        /* The last run that touched the cluster, for status and debugging. */
        return set_str(s->root, "run", s->run_id);
}

int state_require_up(const char *dir, const char *cluster, const char *config_path, bool quiet)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", dir, STATE_FILE);

        if (!path)
                return log_error_errno(ENOMEM, "out of memory");
        if (file_exists(path))
                return 0;
        if (!quiet)
                log_error("cluster %s is not up (no %s): run 'vgpuenv up -c %s' first", cluster,
                          path, config_path);
        return -ENOENT;
}

int state_peek(struct state *s, const char *dir, const char *cluster, const char *provider)
{
        *s = (struct state){};
        pthread_mutex_init(&s->lock, NULL);
        s->path = strdup_printf("%s/%s", dir, STATE_FILE);
        s->run_id = strdup("(this run)");
        if (!s->path || !s->run_id)
                return -ENOMEM;
        return load(s, cluster, provider);
}

static int save_locked(struct state *s)
{
        _cleanup_free_ char *text = NULL;
        int r;

        if (!s->root || !s->path)
                return -EINVAL;
        text = cJSON_Print(s->root);
        if (!text)
                return -ENOMEM;
        r = write_file_atomic(s->path, text, strlen(text), 0600);
        if (r < 0)
                return log_error_errno(r, "cannot write the state file %s: %s", s->path,
                                       strerror(-r));
        return 0;
}

int state_save(struct state *s)
{
        int r;

        pthread_mutex_lock(&s->lock);
        r = save_locked(s);
        pthread_mutex_unlock(&s->lock);
        return r;
}

void state_done(struct state *s)
{
        if (!s)
                return;
        cJSON_Delete(s->root);
        free(s->path);
        free(s->run_id);
        pthread_mutex_destroy(&s->lock);
        *s = (struct state){};
}

int state_remove(struct state *s)
{
        _cleanup_free_ char *dir = NULL;
        char *slash;

        if (!s->path)
                return -EINVAL;
        if (unlink(s->path) < 0 && errno != ENOENT)
                return log_error_errno(errno, "cannot remove the state file %s: %m", s->path);
        dir = strdup(s->path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                /* Only when empty: keys or disks still in it belong to
                 * whoever removes them. */
                (void)rmdir(dir);
        }
        return 0;
}

static cJSON *find_resource(cJSON *resources, const char *kind, const char *name)
{
        cJSON *it;

        cJSON_ArrayForEach(it, resources)
        {
                const char *k = get_str(it, "kind"), *n = get_str(it, "name");
                if (k && n && streq(k, kind) && streq(n, name))
                        return it;
        }
        return NULL;
}

int state_add_resource(struct state *s, const char *kind, const char *name)
{
        cJSON *res, *o;
        int r = -ENOMEM;

        pthread_mutex_lock(&s->lock);
        res = array_of(s->root, "resources");
        if (!res)
                goto out;
        if (find_resource(res, kind, name)) {
                r = 0;
                goto out;
        }
        o = cJSON_CreateObject();
        if (!o)
                goto out;
        if (set_str(o, "kind", kind) < 0 || set_str(o, "name", name) < 0 ||
            set_str(o, "run", s->run_id ? s->run_id : "") < 0 || !cJSON_AddItemToArray(res, o)) {
                cJSON_Delete(o);
                goto out;
        }
        r = save_locked(s);
out:
        pthread_mutex_unlock(&s->lock);
        return r;
}

int state_drop_resource(struct state *s, const char *kind, const char *name)
{
        cJSON *res, *it;
        int r = 0;

        pthread_mutex_lock(&s->lock);
        res = cJSON_GetObjectItemCaseSensitive(s->root, "resources");
        it = find_resource(res, kind, name);
        if (it) {
                cJSON_DetachItemViaPointer(res, it);
                cJSON_Delete(it);
                r = save_locked(s);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

bool state_has_resource(const struct state *s, const char *kind, const char *name)
{
        struct state *m = (struct state *)s; /* locking is not a logical change */
        bool found;

        pthread_mutex_lock(&m->lock);
        found = find_resource(cJSON_GetObjectItemCaseSensitive(s->root, "resources"), kind, name);
        pthread_mutex_unlock(&m->lock);
        return found;
}

bool state_resource_is_ours_this_run(const struct state *s, const char *kind, const char *name)
{
        struct state *m = (struct state *)s;
        const cJSON *it;
        bool ours = false;

        pthread_mutex_lock(&m->lock);
        it = find_resource(cJSON_GetObjectItemCaseSensitive(s->root, "resources"), kind, name);
        if (it && s->run_id) {
                const char *run = get_str(it, "run");
                ours = run && streq(run, s->run_id);
        }
        pthread_mutex_unlock(&m->lock);
        return ours;
}

int state_set_node(struct state *s, const struct node_target *t)
{
        cJSON *nodes, *it, *o = NULL;
        int r = -ENOMEM;

        if (!t->name)
                return -EINVAL;
        pthread_mutex_lock(&s->lock);
        nodes = array_of(s->root, "nodes");
        if (!nodes)
                goto out;
        cJSON_ArrayForEach(it, nodes)
        {
                const char *n = get_str(it, "name");
                if (n && streq(n, t->name)) {
                        o = it;
                        break;
                }
        }
        /* Update in place: other members (family, probe_ok) set by node
         * setup survive a provider re-recording the node. */
        if (!o) {
                o = cJSON_CreateObject();
                if (!o || !cJSON_AddItemToArray(nodes, o)) {
                        cJSON_Delete(o);
                        goto out;
                }
                if (set_str(o, "name", t->name) < 0)
                        goto out;
        }
        const struct {
                const char *key, *value;
        } strs[] = {{"address", t->host},
                    {"user", t->user},
                    {"identity", t->identity},
                    {"host_key", t->host_key}};
        for (size_t i = 0; i < ELEMENTSOF(strs); i++) {
                if (!strs[i].value) {
                        cJSON_DeleteItemFromObjectCaseSensitive(o, strs[i].key);
                        continue;
                }
                if (set_str(o, strs[i].key, strs[i].value) < 0)
                        goto out;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(o, "port");
        if (!cJSON_AddNumberToObject(o, "port", t->port ? t->port : 22))
                goto out;
        r = save_locked(s);
out:
        pthread_mutex_unlock(&s->lock);
        return r;
}

int state_get_nodes(const struct state *s, struct node_target **ret, size_t *ret_n)
{
        struct state *m = (struct state *)s;
        const cJSON *nodes, *it;
        struct node_target *v = NULL;
        size_t n = 0;
        int r = 0;

        pthread_mutex_lock(&m->lock);
        nodes = cJSON_GetObjectItemCaseSensitive(s->root, "nodes");
        size_t total = (size_t)cJSON_GetArraySize(nodes);
        if (total > 0) {
                v = calloc(total, sizeof(*v));
                if (!v) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        cJSON_ArrayForEach(it, nodes)
        {
                const cJSON *port = cJSON_GetObjectItemCaseSensitive(it, "port");
                if (!get_str(it, "name"))
                        continue; /* not ours to guess at */
                v[n++] = (struct node_target){
                    .name = get_str(it, "name"),
                    .host = get_str(it, "address"),
                    .port =
                        cJSON_IsNumber(port) && port->valuedouble > 0 && port->valuedouble < 65536
                            ? (unsigned)port->valuedouble
                            : 22,
                    .user = get_str(it, "user"),
                    .identity = get_str(it, "identity"),
                    .host_key = get_str(it, "host_key"),
                };
        }
out:
        pthread_mutex_unlock(&m->lock);
        if (r < 0)
                return r;
        *ret = v;
        *ret_n = n;
        return 0;
}

cJSON *state_provider_data(struct state *s)
{
        cJSON *pd;

        pthread_mutex_lock(&s->lock);
        pd = cJSON_GetObjectItemCaseSensitive(s->root, "provider_data");
        if (!cJSON_IsObject(pd)) {
                cJSON_DeleteItemFromObjectCaseSensitive(s->root, "provider_data");
                pd = cJSON_AddObjectToObject(s->root, "provider_data");
        }
        pthread_mutex_unlock(&s->lock);
        return pd;
}
