/* Small helpers for strings, files and paths that every program needs.
 * All return 0 or a negative errno and never log: the caller knows what the
 * failure means. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/macro.h"

/* asprintf that returns NULL on failure instead of an undefined pointer. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
char *strdup_vprintf(const char *fmt, va_list ap) _printf_(1, 0);

/* FNV-1a: a cheap, stable 64-bit hash for "is this string among those?"
 * checks made before a strcmp, not for tables an attacker can fill. */
uint64_t string_hash(const char *s);

/* String vectors (NULL-terminated, heap-owned). */
size_t strv_length(char *const *l);
int strv_push(char ***l, char *value);         /* takes ownership of value */
int strv_extend(char ***l, const char *value); /* copies value */
char **strv_copy(char *const *l);
bool strv_contains(char *const *l, const char *s);
char *strv_join(char *const *l, const char *sep);

/* Quote one argument for a POSIX shell: 'it'"'"'s'. Used for commands run
 * on nodes over ssh, where the remote side always goes through a shell. */
char *shell_quote(const char *arg);
/* Quote and join argv into one shell command line. */
char *shell_join(char *const *argv);
/* "KEY=VALUE ..." as a shell prefix: KEY=quoted-value, space-separated. */
char *shell_env_join(char *const *env);

int read_full_file(const char *path, char **ret, size_t *ret_size);
/* Write via a temporary file and rename, so readers never see half a file. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
/* Writes all n bytes to fd, retrying short writes and EINTR; 0 or -errno. */
int write_all(int fd, const void *data, size_t n);
int mkdir_p(const char *path, mode_t mode);
/* rm -rf, refusing "/" and empty paths. */
int rm_rf(const char *path);
bool file_exists(const char *path);
int copy_file(const char *from, const char *to, mode_t mode);

/* Lower-case hex SHA-256 of a buffer or a whole file (65 bytes with NUL). */
int sha256_hex(const void *data, size_t size, char out[65]);
int sha256_file_hex(const char *path, char out[65]);

/* s is one or more decimal digits and nothing else. */
bool all_digits(const char *s);
/* Parse a non-negative integer with range check. */
int parse_uint64(const char *s, unsigned long long min, unsigned long long max,
                 unsigned long long *ret);

/* Directory for caches and state, honouring VGPUENV_CACHE_DIR and
 * VGPUENV_STATE_DIR (used by tests to isolate runs). */
char *vgpuenv_cache_dir(void);
char *vgpuenv_state_dir(void);

bool startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);
