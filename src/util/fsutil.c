#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "crashpoint.h"
#include "fsutil.h"

static int
write_all (int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0) {
    ssize_t n = write (fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= (size_t) n;
  }
  return 0;
}

int
v2k_fsync_dir (const char *dir, struct v2k_error *err)
{
  CLEANUP_CLOSE int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync (fd) < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "syncing directory %s", dir);
    return -1;
  }
  return 0;
}

int
v2k_write_file_atomic (const char *path, const void *data, size_t len,
                       mode_t mode, struct v2k_error *err)
{
  CLEANUP_FREE char *dircopy = strdup (path);
  CLEANUP_FREE char *tmp = NULL;
  if (!dircopy || asprintf (&tmp, "%s.tmp.%ld", path, (long) getpid ()) < 0) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    tmp = NULL;
    return -1;
  }
  const char *dir = dirname (dircopy);

  int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "creating %s", tmp);
    return -1;
  }
  if (write_all (fd, data, len) < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "writing %s", tmp);
    goto fail;
  }
  v2k_crashpoint ("atomic-write:tmp");
  if (fsync (fd) < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "syncing %s", tmp);
    goto fail;
  }
  v2k_crashpoint ("atomic-write:fsync");
  if (close (fd) < 0) {
    fd = -1;
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "closing %s", tmp);
    goto fail;
  }
  fd = -1;
  if (rename (tmp, path) < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "replacing %s", path);
    goto fail;
  }
  v2k_crashpoint ("atomic-write:rename");
  return v2k_fsync_dir (dir, err);

 fail:
  if (fd >= 0)
    close (fd);
  unlink (tmp);
  return -1;
}

char *
v2k_read_file (const char *path, size_t max, size_t *len_out, int code,
               struct v2k_error *err)
{
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    v2k_error_errno (err, code, "%s", path);
    return NULL;
  }
  struct stat st;
  if (fstat (fd, &st) < 0) {
    v2k_error_errno (err, code, "%s", path);
    return NULL;
  }
  if (!S_ISREG (st.st_mode)) {
    v2k_error_set (err, code, "%s: not a regular file", path);
    return NULL;
  }
  if ((size_t) st.st_size > max) {
    v2k_error_set (err, code, "%s: too large (%lld bytes, limit %zu)", path,
                   (long long) st.st_size, max);
    return NULL;
  }
  /* The size was checked; the read itself is bounded too, in case the file
   * grows under us. */
  size_t len;
  char *buf = v2k_read_stream (fd, max, &len, code, err);
  if (!buf) {
    v2k_error_prefix (err, "%s", path);
    return NULL;
  }
  if (len_out)
    *len_out = len;
  return buf;
}

char *
v2k_read_stream (int fd, size_t max, size_t *len_out, int code, struct v2k_error *err)
{
  size_t cap = 65536, len = 0;
  char *buf = malloc (cap);
  if (!buf) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  for (;;) {
    if (len + 1 >= cap) {
      if (cap > max) {
        free (buf);
        v2k_error_set (err, code, "input larger than %zu bytes", max);
        return NULL;
      }
      char *p = realloc (buf, cap * 2);
      if (!p) {
        free (buf);
        v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
        return NULL;
      }
      buf = p;
      cap *= 2;
    }
    ssize_t n = read (fd, buf + len, cap - len - 1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      free (buf);
      v2k_error_errno (err, code, "reading input");
      return NULL;
    }
    if (n == 0)
      break;
    len += (size_t) n;
  }
  buf[len] = '\0';
  *len_out = len;
  return buf;
}

int
v2k_mkdir_p (const char *path, mode_t mode, struct v2k_error *err)
{
  CLEANUP_FREE char *copy = strdup (path);
  if (!copy) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  for (char *p = copy + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char saved = *p;
      *p = '\0';
      if (mkdir (copy, mode) < 0 && errno != EEXIST) {
        v2k_error_errno (err, V2K_EXIT_WORKDIR, "creating directory %s", copy);
        return -1;
      }
      *p = saved;
      if (saved == '\0')
        break;
    }
  }
  struct stat st;
  if (stat (path, &st) < 0 || !S_ISDIR (st.st_mode)) {
    v2k_error_set (err, V2K_EXIT_WORKDIR, "%s is not a directory", path);
    return -1;
  }
  return 0;
}

void
v2k_now_rfc3339 (char buf[32])
{
  struct timespec ts;
  struct tm tm;
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  size_t n = strftime (buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (buf + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

double
v2k_now_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

double
v2k_monotonic_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}
