#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <jansson.h>

#include "lock.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"

static void
read_holder (int fd, struct v2k_lock_holder *h)
{
  char buf[512];
  memset (h, 0, sizeof *h);
  ssize_t n = pread (fd, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return;
  buf[n] = '\0';
  json_t *j = json_loads (buf, JSON_DISABLE_EOF_CHECK, NULL);
  if (!j)
    return;
  json_t *pid = json_object_get (j, "pid");
  json_t *cmd = json_object_get (j, "command");
  json_t *since = json_object_get (j, "since");
  if (json_is_integer (pid))
    h->pid = (long) json_integer_value (pid);
  if (json_is_string (cmd))
    snprintf (h->command, sizeof h->command, "%s", json_string_value (cmd));
  if (json_is_string (since))
    snprintf (h->since, sizeof h->since, "%s", json_string_value (since));
  json_decref (j);
}

int
v2k_lock_acquire (const char *workdir, const char *command, struct v2k_lock *lock,
                  struct v2k_error *err)
{
  CLEANUP_FREE char *path = NULL;
  if (asprintf (&path, "%s/%s", workdir, V2K_LOCK_FILE) < 0) {
    path = NULL;
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  int fd = open (path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "opening lock %s", path);
    return -1;
  }
  if (flock (fd, LOCK_EX | LOCK_NB) < 0) {
    int e = errno;
    struct v2k_lock_holder h;
    if (e == EWOULDBLOCK)
      read_holder (fd, &h);
    close (fd);
    if (e != EWOULDBLOCK) {
      errno = e;
      v2k_error_errno (err, V2K_EXIT_WORKDIR, "locking %s", path);
    }
    else if (h.pid > 0)
      v2k_error_set (err, V2K_EXIT_LOCKED,
                     "workdir %s is in use by pid %ld (ablestack_v2k %s, since %s); "
                     "wait for it to finish or stop it first", workdir, h.pid,
                     h.command, h.since);
    else
      v2k_error_set (err, V2K_EXIT_LOCKED,
                     "workdir %s is in use by another ablestack_v2k process; "
                     "wait for it to finish or stop it first", workdir);
    return -1;
  }
  char since[32];
  v2k_now_rfc3339 (since);
  json_t *j = json_pack ("{s:i, s:s, s:s}", "pid", (json_int_t) getpid (),
                         "command", command, "since", since);
  CLEANUP_FREE char *text = j ? json_dumps (j, JSON_COMPACT) : NULL;
  json_decref (j);
  if (!text || ftruncate (fd, 0) < 0 ||
      pwrite (fd, text, strlen (text), 0) != (ssize_t) strlen (text)) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "writing lock holder to %s", path);
    close (fd);
    return -1;
  }
  lock->fd = fd;
  return 0;
}

void
v2k_lock_release (struct v2k_lock *lock)
{
  if (lock->fd < 0)
    return;
  if (ftruncate (lock->fd, 0) < 0) {
    /* The stale holder text is harmless: liveness comes from the flock. */
  }
  close (lock->fd);
  lock->fd = -1;
}

/* /proc/locks lines: "1: FLOCK  ADVISORY  WRITE 1234 fd:01:131 0 EOF". */
static bool
flock_held (dev_t dev, ino_t ino)
{
  CLEANUP_FCLOSE FILE *fp = fopen ("/proc/locks", "re");
  if (!fp)
    return false;
  char line[256];
  while (fgets (line, sizeof line, fp)) {
    char kind[16], devino[64];
    if (sscanf (line, "%*s %15s %*s %*s %*d %63s", kind, devino) != 2)
      continue;
    if (strcmp (kind, "FLOCK") != 0)
      continue;
    unsigned maj, min;
    unsigned long long inode;
    if (sscanf (devino, "%x:%x:%llu", &maj, &min, &inode) != 3)
      continue;
    if (maj == major (dev) && min == minor (dev) && inode == (unsigned long long) ino)
      return true;
  }
  return false;
}

int
v2k_lock_probe (const char *workdir, struct v2k_lock_holder *holder)
{
  CLEANUP_FREE char *path = NULL;
  memset (holder, 0, sizeof *holder);
  if (asprintf (&path, "%s/%s", workdir, V2K_LOCK_FILE) < 0) {
    path = NULL;
    return -1;
  }
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  struct stat st;
  if (fstat (fd, &st) < 0)
    return -1;
  if (!flock_held (st.st_dev, st.st_ino))
    return 0;
  read_holder (fd, holder);
  return 1;
}
