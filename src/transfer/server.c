#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "server.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"
#include "../util/spawn.h"

char *
v2k_rundir (const char *workdir, bool *owned, struct v2k_error *err)
{
  char *dir = NULL;
  *owned = false;
  if (workdir && asprintf (&dir, "%s/run", workdir) >= 0 && strlen (dir) < 80) {
    if (mkdir (dir, 0700) == 0 || errno == EEXIST)
      return dir;
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "creating %s", dir);
    free (dir);
    return NULL;
  }
  free (dir);
  dir = strdup ("/tmp/v2k-run-XXXXXX");
  if (!dir || !mkdtemp (dir)) {
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "creating a run directory in /tmp");
    free (dir);
    return NULL;
  }
  *owned = true;
  return dir;
}

static bool
socket_ready (const char *path)
{
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf (sa.sun_path, sizeof sa.sun_path, "%s", path);
  bool ok = connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
  close (fd);
  return ok;
}

static char *
log_tail (const char *path)
{
  CLEANUP_FCLOSE FILE *fp = fopen (path, "re");
  static char last[512];
  last[0] = '\0';
  char line[512];
  while (fp && fgets (line, sizeof line, fp))
    if (line[0] != '\n')
      snprintf (last, sizeof last, "%s", line);
  last[strcspn (last, "\n")] = '\0';
  return last;
}

static int
wait_ready (struct v2k_server *srv, const char *what, struct v2k_error *err)
{
  struct timespec ts = { 0, 20 * 1000 * 1000 };
  for (int i = 0; i < 1500; i++) {
    if (socket_ready (srv->sock))
      return 0;
    int st;
    if (waitpid (srv->pid, &st, WNOHANG) == srv->pid) {
      srv->pid = 0;
      v2k_error_set (err, V2K_EXIT_TRANSFER, "%s exited before serving: %s", what,
                     log_tail (srv->log_file));
      return -1;
    }
    nanosleep (&ts, NULL);
  }
  v2k_error_set (err, V2K_EXIT_TRANSFER, "%s did not serve %s within 30 s", what, srv->sock);
  return -1;
}

static int
paths (struct v2k_server *srv, const char *rundir, const char *name, struct v2k_error *err)
{
  memset (srv, 0, sizeof *srv);
  if (asprintf (&srv->sock, "%s/%s.sock", rundir, name) < 0 ||
      asprintf (&srv->pid_file, "%s/%s.pid", rundir, name) < 0 ||
      asprintf (&srv->log_file, "%s/%s.log", rundir, name) < 0 ||
      asprintf (&srv->uri, "nbd+unix:///?socket=%s", srv->sock) < 0) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  unlink (srv->sock);  /* a stale socket from a killed run */
  return 0;
}

static bool
supports_direct (const char *path)
{
  int fd = open (path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0)
    return false;
  close (fd);
  return true;
}

int
v2k_server_qemu_nbd (const char *rundir, const char *name, const char *image,
                     const char *format, bool readonly, int connections,
                     struct v2k_server *srv, struct v2k_error *err)
{
  if (paths (srv, rundir, name, err) == -1)
    return -1;
  char fmt[64], sock[256], shared[32];
  snprintf (fmt, sizeof fmt, "--format=%s", format);
  snprintf (sock, sizeof sock, "--socket=%s", srv->sock);
  snprintf (shared, sizeof shared, "--shared=%d", connections < 1 ? 1 : connections + 1);
  const char *argv[20];
  size_t n = 0;
  argv[n++] = "qemu-nbd";
  argv[n++] = fmt;
  argv[n++] = sock;
  argv[n++] = "--persistent";
  argv[n++] = shared;
  if (readonly)
    argv[n++] = "--read-only";
  else {
    if (supports_direct (image)) {
      argv[n++] = "--cache=none";
      argv[n++] = "--aio=native";
    }
    else
      argv[n++] = "--cache=writeback";
    argv[n++] = "--discard=unmap";
    argv[n++] = "--detect-zeroes=unmap";
  }
  argv[n++] = "--";
  argv[n++] = image;
  argv[n] = NULL;
  struct v2k_spawn sp = { .argv = argv, .log_file = srv->log_file, .pid_file = srv->pid_file };
  if ((srv->pid = v2k_spawn_start (&sp, err)) < 0) {
    srv->pid = 0;
    return -1;
  }
  char what[512];
  snprintf (what, sizeof what, "qemu-nbd for %s", image);
  return wait_ready (srv, what, err);
}

int
v2k_server_nbdkit (const char *rundir, const char *name, const char *const *args,
                   const int *keep_fds, size_t n_keep_fds, const char *const *extra_env,
                   struct v2k_server *srv, struct v2k_error *err)
{
  if (paths (srv, rundir, name, err) == -1)
    return -1;
  size_t nargs = 0;
  while (args[nargs])
    nargs++;
  const char **argv = calloc (nargs + 12, sizeof *argv);
  if (!argv) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  size_t n = 0;
  argv[n++] = "nbdkit";
  argv[n++] = "--foreground";
  argv[n++] = "--exit-with-parent";
  argv[n++] = "--unix";
  argv[n++] = srv->sock;
  for (size_t i = 0; i < nargs; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  struct v2k_spawn sp = { .argv = argv, .log_file = srv->log_file, .pid_file = srv->pid_file,
                          .keep_fds = keep_fds, .n_keep_fds = n_keep_fds, .extra_env = extra_env };
  srv->pid = v2k_spawn_start (&sp, err);
  free (argv);
  if (srv->pid < 0) {
    srv->pid = 0;
    return -1;
  }
  return wait_ready (srv, "nbdkit", err);
}

void
v2k_server_stop (struct v2k_server *srv)
{
  if (srv->pid > 0)
    v2k_spawn_stop (srv->pid, srv->pid_file, 5000);
  else if (srv->pid_file)
    unlink (srv->pid_file);
  if (srv->sock)
    unlink (srv->sock);
  free (srv->sock);
  free (srv->pid_file);
  free (srv->log_file);
  free (srv->uri);
  memset (srv, 0, sizeof *srv);
}

char *
v2k_image_format (const char *path, struct v2k_error *err)
{
  CLEANUP_FREE char *tmp = strdup ("/tmp/v2k-info-XXXXXX");
  int fd = tmp ? mkstemp (tmp) : -1;
  if (fd < 0) {
    v2k_error_errno (err, V2K_EXIT_INTERNAL, "temporary file");
    return NULL;
  }
  close (fd);
  const char *argv[] = { "qemu-img", "info", "--output=json", "--", path, NULL };
  struct v2k_spawn sp = { .argv = argv, .log_file = tmp };
  int status;
  char *fmt = NULL;
  if (v2k_spawn_run (&sp, &status, err) == 0) {
    json_t *j = status == 0 ? json_load_file (tmp, 0, NULL) : NULL;
    const char *f = json_string_value (json_object_get (j, "format"));
    if (f)
      fmt = strdup (f);
    else
      v2k_error_set (err, V2K_EXIT_USAGE, "%s: not an image qemu-img can read", path);
    json_decref (j);
  }
  unlink (tmp);
  return fmt;
}

int
v2k_image_create (const char *path, const char *format, int64_t size, struct v2k_error *err)
{
  if (strcmp (format, "raw") == 0) {
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      v2k_error_errno (err, V2K_EXIT_TARGET, "creating %s", path);
      return -1;
    }
    if (ftruncate (fd, size) < 0) {
      v2k_error_errno (err, V2K_EXIT_TARGET, "sizing %s", path);
      close (fd);
      unlink (path);
      return -1;
    }
    close (fd);
    return 0;
  }
  if (access (path, F_OK) == 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s already exists", path);
    return -1;
  }
  char sz[32];
  snprintf (sz, sizeof sz, "%lld", (long long) size);
  CLEANUP_FREE char *log = strdup ("/tmp/v2k-create-XXXXXX");
  int fd = log ? mkstemp (log) : -1;
  if (fd >= 0)
    close (fd);
  /* lazy_refcounts: fewer metadata writes while copying; qemu repairs the
   * refcounts after a crash. compat=1.1 is needed for it. */
  const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                         "compat=1.1,lazy_refcounts=on,cluster_size=65536", "--", path, sz, NULL };
  struct v2k_spawn sp = { .argv = argv, .log_file = fd >= 0 ? log : NULL };
  int status;
  int r = v2k_spawn_run (&sp, &status, err);
  if (r == 0 && status != 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "qemu-img create %s failed: %s", path,
                   fd >= 0 ? log_tail (log) : "see its output");
    r = -1;
  }
  if (fd >= 0)
    unlink (log);
  if (r == 0)
    chmod (path, 0600);
  return r;
}

/* True when PID is a qemu-nbd or nbdkit serving a socket in RUNDIR. */
static bool
our_helper (pid_t pid, const char *rundir)
{
  if (!v2k_pid_is (pid, "qemu-nbd") && !v2k_pid_is (pid, "nbdkit"))
    return false;
  char path[64];
  snprintf (path, sizeof path, "/proc/%ld/cmdline", (long) pid);
  size_t len;
  struct v2k_error ignored = { 0 };
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  CLEANUP_FREE char *cmd = v2k_read_stream (fd, 1 << 20, &len, V2K_EXIT_INTERNAL, &ignored);
  if (!cmd)
    return false;
  for (size_t i = 0; i < len; i++)
    if (cmd[i] == '\0')
      cmd[i] = ' ';
  return strstr (cmd, rundir) != NULL;
}

static void
stop_helper (pid_t pid)
{
  kill (pid, SIGTERM);
  for (int i = 0; i < 100 && (v2k_pid_is (pid, "qemu-nbd") || v2k_pid_is (pid, "nbdkit")); i++)
    usleep (50000);
  if (v2k_pid_is (pid, "qemu-nbd") || v2k_pid_is (pid, "nbdkit"))
    kill (pid, SIGKILL);
}

int
v2k_server_stop_stale (const char *workdir)
{
  int stopped = 0;
  CLEANUP_FREE char *rundir = NULL;
  if (asprintf (&rundir, "%s/run/", workdir) < 0)
    return 0;
  /* Every helper whose command line names our run directory, pidfile or
   * not: a command killed right after a fork has not written the pidfile
   * yet, and a qemu-nbd hit by PDEATHSIG while still starting up can miss
   * its SIGTERM. */
  DIR *proc = opendir ("/proc");
  struct dirent *e;
  while (proc && (e = readdir (proc))) {
    char *end;
    long pid = strtol (e->d_name, &end, 10);
    if (pid > 0 && *end == '\0' && pid != (long) getpid () && our_helper ((pid_t) pid, rundir)) {
      stop_helper ((pid_t) pid);
      stopped++;
    }
  }
  if (proc)
    closedir (proc);
  rundir[strlen (rundir) - 1] = '\0';
  DIR *d = opendir (rundir);
  if (!d)
    return stopped;
  while ((e = readdir (d))) {
    size_t n = strlen (e->d_name);
    char full[4096];
    snprintf (full, sizeof full, "%s/%s", rundir, e->d_name);
    if ((n > 4 && strcmp (e->d_name + n - 4, ".pid") == 0) ||
        (n > 5 && strcmp (e->d_name + n - 5, ".sock") == 0))
      unlink (full);
  }
  closedir (d);
  return stopped;
}

