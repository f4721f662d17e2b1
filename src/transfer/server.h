/* The NBD servers the tool runs as children: qemu-nbd over an image file
 * (a VMDK source read-only, a qcow2 or raw target), and nbdkit. Each gets a
 * Unix socket and a pidfile in a run directory, and dies with us. */
#ifndef V2K_SERVER_H
#define V2K_SERVER_H

#include <stdbool.h>
#include <sys/types.h>
#include "../util/error.h"

struct v2k_server {
  pid_t pid;
  char *sock;
  char *pid_file;
  char *log_file;
  char *uri;               /* nbd+unix:///?socket=… */
};

/* A directory for sockets and pidfiles: <workdir>/run, or a private one in
 * /tmp when that path is too long for a Unix socket (or WORKDIR is NULL).
 * *OWNED says whether the caller must remove it. */
char *v2k_rundir (const char *workdir, bool *owned, struct v2k_error *err);

/* qemu-nbd on IMAGE of FORMAT. Targets get discard and zero detection, and
 * O_DIRECT where the filesystem has it. */
int v2k_server_qemu_nbd (const char *rundir, const char *name, const char *image,
                         const char *format, bool readonly, int connections,
                         struct v2k_server *srv, struct v2k_error *err);

/* nbdkit with ARGS (plugin and parameters), exiting with us. KEEP_FDS are
 * inherited (for password=-FD); EXTRA_ENV is added to the child's. */
int v2k_server_nbdkit (const char *rundir, const char *name, const char *const *args,
                       const int *keep_fds, size_t n_keep_fds, const char *const *extra_env,
                       struct v2k_server *srv, struct v2k_error *err);

void v2k_server_stop (struct v2k_server *srv);

/* Stops helpers that a killed command of this workdir left behind: every
 * qemu-nbd or nbdkit whose command line names <workdir>/run/ (found in
 * /proc, so that one whose pidfile was never written is found too), and
 * removes the pidfiles and sockets there. Call it holding the workdir lock.
 * Returns how many were stopped. */
int v2k_server_stop_stale (const char *workdir);

/* The format of an image file ("raw", "qcow2", "vmdk"), from qemu-img info. */
char *v2k_image_format (const char *path, struct v2k_error *err);

/* Creates a sparse target: qcow2 through qemu-img create (lazy refcounts),
 * raw as a sparse file. Fails if PATH exists. */
int v2k_image_create (const char *path, const char *format, int64_t size, struct v2k_error *err);

#endif
