/* The state file of a cluster: what `up` created, with its ownership mark,
 * and how to reach the nodes.
 *
 * It is a JSON document (cJSON) written atomically after every change, so a
 * crash or kill -9 never loses track of an object: the next `up` resumes from
 * it and `down` removes exactly what it lists. Layout:
 *   { "cluster": NAME, "provider": "local", "run": RUN-ID,
 *     "resources": [ { "kind": "domain", "name": ..., "run": RUN-ID } ],
 *     "nodes": [ { "name", "address", "port", "user", "identity",
 *                  "host_key", "family" } ],
 *     "provider_data": { ... } } */
#pragma once

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* The state_* calls below are safe to use from parallel node threads: they
 * serialize on lock (a zero-initialized struct state has a usable lock).
 * Code that edits root directly must do so from one thread. */
struct state {
        char *path;
        cJSON *root;
        char *run_id; /* this process's run, to roll back only what it made */
        pthread_mutex_t lock;
};

/* Load <dir>/state.json, or start an empty one (written at the first change).
 * Creates dir (0700). A state written for another cluster or provider is
 * refused (-EINVAL), an unreadable or corrupt file too (-EBADMSG), both
 * logged with the file's name. A resource added again keeps the run that
 * first recorded it, so a rollback never removes what an earlier run made. */
int state_open(struct state *s, const char *dir, const char *cluster, const char *provider);
/* The same without creating anything and without a run id of its own (a
 * dry run plans from it); never save it. */
int state_peek(struct state *s, const char *dir, const char *cluster, const char *provider);
/* 0 when cluster has a state in dir (it is up), else -ENOENT, logged
 * unless quiet as "cluster X is not up (no FILE): run 'vgpuenv up -c
 * CONFIG' first". For the commands that need a cluster `up` made. */
int state_require_up(const char *dir, const char *cluster, const char *config_path, bool quiet);
int state_save(struct state *s);
void state_done(struct state *s);
/* Delete the file (after `down` removed everything). */
int state_remove(struct state *s);

int state_add_resource(struct state *s, const char *kind, const char *name);
int state_drop_resource(struct state *s, const char *kind, const char *name);
bool state_has_resource(const struct state *s, const char *kind, const char *name);
/* Was the resource created by this process's run? */
bool state_resource_is_ours_this_run(const struct state *s, const char *kind, const char *name);

struct node_target;
int state_set_node(struct state *s, const struct node_target *t);
/* Fill targets from the state; strings stay owned by the state. */
int state_get_nodes(const struct state *s, struct node_target **ret, size_t *ret_n);
/* The "provider_data" object (created when missing); edit it, then
 * state_save(). */
cJSON *state_provider_data(struct state *s);
