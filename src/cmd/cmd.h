/* The command layer: one function per command, each with its own option
 * parsing and --help. Only this layer prints errors (see main.c). */
#ifndef V2K_CMD_H
#define V2K_CMD_H

#include <stdbool.h>
#include "../util/error.h"

struct v2k_global {
  const char *workdir;   /* --workdir, or NULL */
  bool json;             /* --json: machine-readable output and errors */
  int verbose;           /* -v, repeatable */
  bool quiet;            /* -q */
};

/* Each command returns an exit code; on failure it has filled ERR. */
typedef int (*v2k_command_fn) (int argc, char **argv, struct v2k_global *g,
                               struct v2k_error *err);

int cmd_init (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_cbt (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_snapshot (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_sync (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_verify (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_cleanup (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_copy (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_cutover (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_run (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_convert (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_register (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);
int cmd_status (int argc, char **argv, struct v2k_global *g, struct v2k_error *err);

/* Parses a non-negative decimal count for OPTION, or fails with a usage error. */
int v2k_parse_count (const char *option, const char *value, long max, long *out,
                     struct v2k_error *err);
/* Parses VALUE of OPTION as one of NAMES (NULL-terminated), or fails with a
 * usage error listing them. */
int v2k_parse_enum (const char *option, const char *value, const char *const *names, int *out,
                    struct v2k_error *err);
/* The usage error for an unknown option or a missing argument, from getopt. */
int v2k_usage_error (struct v2k_error *err, const char *command, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

#endif
