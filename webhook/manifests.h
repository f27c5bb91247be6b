/* `mesa-injector manifests` and `mesa-injector cdi-spec`: the Kubernetes
 * objects that deploy the webhook (in-cluster, or pointing at a webhook on
 * the host in URL mode) and the CDI spec file for nodes in cdi mode. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "webhook/config.h"

struct manifests_opts {
        const struct injector_config *config;
        const char *config_text; /* the --config file, shipped in a ConfigMap */
        const char *url;         /* https://HOST:PORT: URL mode */
        const char *certs_dir;   /* ca.crt (+ tls.crt/tls.key in-cluster) */
        /* --image/--library-profile: config already has them; the
         * Deployment's serve gets them too. NULL: none given. */
        const struct injector_overrides *overrides;
};

int manifests_print(const struct manifests_opts *o, FILE *out);
/* s as a YAML double-quoted scalar. */
void manifests_quote(FILE *f, const char *s);
/* The pieces both files print: an object's head (apiVersion, kind, name,
 * and namespace unless NULL), its labels for app, a map of KEY=VALUE
 * strings at indent, the ConfigMap that ships --config (if given). */
void manifests_head(FILE *f, const char *kind, const char *api, const char *name, const char *ns);
void manifests_labels(FILE *f, const char *indent, const char *app);
void manifests_label_map(FILE *f, const char *indent, char *const *sel);
void manifests_config_map(const struct manifests_opts *o, FILE *f);
/* webhook/manifests_device_plugin.c: the device plugin's DaemonSet (and,
 * when in_cluster_printed is false, the Namespace and config it needs). */
void device_plugin_manifests_print(const struct manifests_opts *o, FILE *f,
                                   bool in_cluster_printed);
int cdi_spec_print(const struct injector_config *c, FILE *out);

/* The hook script as shipped in the ConfigMap: webhook/hook/onDefineDomain
 * with the configured render node. Caller frees. */
char *hook_script_render(const struct injector_config *c);
