/* Child processes: spawned from an argv (never a shell), with a minimal
 * environment built from an allow-list (so no GOVC_PASSWORD or other secret
 * leaks in), chosen inherited file descriptors, SIGTERM on our death
 * (PR_SET_PDEATHSIG), stdout/stderr to a log file, and a pidfile. */
#ifndef V2K_SPAWN_H
#define V2K_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>
#include "error.h"

struct v2k_spawn {
  const char *const *argv;       /* argv[0] is looked up in PATH */
  const char *const *extra_env;  /* "NAME=value" added to the allow-listed ones; may be NULL */
  const int *keep_fds;           /* descriptors the child inherits (same numbers); may be NULL */
  size_t n_keep_fds;
  const char *log_file;          /* stdout and stderr; NULL for /dev/null */
  const char *pid_file;          /* written after the fork; NULL for none */
};

/* Starts the child; returns its pid, or -1 with ERR set. */
pid_t v2k_spawn_start (const struct v2k_spawn *sp, struct v2k_error *err);

/* Runs a child to completion; returns its exit status (0 = success) or -1. */
int v2k_spawn_run (const struct v2k_spawn *sp, int *status, struct v2k_error *err);

/* SIGTERM, then SIGKILL after GRACE_MS, then reaps; removes PID_FILE. */
void v2k_spawn_stop (pid_t pid, const char *pid_file, int grace_ms);

/* True when PID is alive (not a zombie) and its command name is COMM. */
bool v2k_pid_is (pid_t pid, const char *comm);

#endif
