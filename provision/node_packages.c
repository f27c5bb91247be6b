/* What node setup needs to know about a node's distribution: its family
 * from /etc/os-release, and the package manager's command lines and output
 * (see node_setup_internal.h). Pure functions: unit tests drive them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "provision/node_setup_internal.h"

static bool os_release_names(const char *text, const char *key, const char *const *names)
{
        size_t klen = strlen(key);
        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
                        _cleanup_free_ char *v = strndup(line + klen + 1, len - klen - 1);
                        if (!v)
                                return false;
                        /* Values may be quoted and ID_LIKE is a space separated list.
                         * strtok_r: node setup runs one thread per node. */
                        char *save = NULL;
                        for (char *tok = strtok_r(v, "\"' \t", &save); tok;
                             tok = strtok_r(NULL, "\"' \t", &save))
                                for (size_t i = 0; names[i]; i++)
                                        if (streq(tok, names[i]))
                                                return true;
                }
                line = eol ? eol + 1 : NULL;
        }
        return false;
}

enum distro_family node_family_from_os_release(const char *text)
{
        static const char *const debian[] = {"debian", "ubuntu", NULL};
        static const char *const rhel[] = {"rhel", "fedora", "centos", "rocky", "almalinux", NULL};

        if (!text)
                return FAMILY_AUTO;
        /* ID wins over ID_LIKE (Ubuntu is ID_LIKE=debian, CentOS ID_LIKE="rhel fedora"). */
        if (os_release_names(text, "ID", debian))
                return FAMILY_DEBIAN;
        if (os_release_names(text, "ID", rhel))
                return FAMILY_RHEL;
        if (os_release_names(text, "ID_LIKE", debian))
                return FAMILY_DEBIAN;
        if (os_release_names(text, "ID_LIKE", rhel))
                return FAMILY_RHEL;
        return FAMILY_AUTO;
}

char **node_pkg_query_argv(enum distro_family family, char *const *pkgs)
{
        _cleanup_strv_free_ char **argv = NULL;
        if (family == FAMILY_RHEL) {
                if (strv_extend(&argv, "rpm") < 0 || strv_extend(&argv, "-q") < 0 ||
                    strv_extend(&argv, "--qf") < 0 || strv_extend(&argv, "%{NAME}\\n") < 0)
                        return NULL;
        } else {
                if (strv_extend(&argv, "dpkg-query") < 0 || strv_extend(&argv, "-W") < 0 ||
                    strv_extend(&argv, "-f") < 0 ||
                    strv_extend(&argv, "${Status} ${Package}\\n") < 0)
                        return NULL;
        }
        for (size_t i = 0; pkgs && pkgs[i]; i++)
                if (strv_extend(&argv, pkgs[i]) < 0)
                        return NULL;
        return TAKE_PTR(argv);
}

/* Is there a line that says pkg is installed? dpkg: "install ok installed
 * NAME" (NAME may carry ":arch"); rpm --qf: "NAME" alone. */
static bool pkg_installed_in(enum distro_family family, const char *pkg, const char *out)
{
        size_t plen = strlen(pkg);
        for (const char *line = out; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                const char *name = line;
                size_t nlen = len;
                bool ok = true;
                if (family != FAMILY_RHEL) {
                        static const char st[] = "install ok installed ";
                        ok = len > sizeof(st) - 1 && strncmp(line, st, sizeof(st) - 1) == 0;
                        name = line + sizeof(st) - 1;
                        nlen = ok ? len - (sizeof(st) - 1) : 0;
                        const char *colon = memchr(name, ':', nlen);
                        if (colon)
                                nlen = colon - name;
                }
                if (ok && nlen == plen && strncmp(name, pkg, plen) == 0)
                        return true;
                line = eol ? eol + 1 : NULL;
        }
        return false;
}

int node_pkg_parse_missing(enum distro_family family, char *const *pkgs, const char *out,
                           char ***ret_missing)
{
        _cleanup_strv_free_ char **missing = NULL;
        for (size_t i = 0; pkgs && pkgs[i]; i++)
                if (!pkg_installed_in(family, pkgs[i], out ? out : ""))
                        if (strv_extend(&missing, pkgs[i]) < 0)
                                return -ENOMEM;
        *ret_missing = TAKE_PTR(missing);
        return 0;
}

char **node_pkg_install_argv(enum distro_family family, char *const *pkgs)
{
        _cleanup_strv_free_ char **argv = NULL;
        static const char *const apt[] = {
            "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install",
            "-y",  "--no-install-recommends",        NULL};
        static const char *const dnf[] = {"dnf", "install", "-y", NULL};
        const char *const *head = family == FAMILY_RHEL ? dnf : apt;
        for (size_t i = 0; head[i]; i++)
                if (strv_extend(&argv, head[i]) < 0)
                        return NULL;
        for (size_t i = 0; pkgs && pkgs[i]; i++)
                if (strv_extend(&argv, pkgs[i]) < 0)
                        return NULL;
        return TAKE_PTR(argv);
}
