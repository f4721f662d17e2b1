#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"

static const char *const level_names[] = { "info", "warn", "error" };

int
v2k_event (const struct v2k_events *ev, enum v2k_event_level level,
           const char *phase, const char *disk, const char *event,
           json_t *detail, struct v2k_error *err)
{
  char ts[32];
  v2k_now_rfc3339 (ts);
  json_t *j = json_object ();
  if (!j) {
    json_decref (detail);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  json_object_set_new (j, "ts", json_string (ts));
  json_object_set_new (j, "run_id", json_string (ev->run_id ? ev->run_id : ""));
  json_object_set_new (j, "level", json_string (level_names[level]));
  json_object_set_new (j, "phase", phase ? json_string (phase) : json_null ());
  if (disk)
    json_object_set_new (j, "disk", json_string (disk));
  json_object_set_new (j, "event", json_string (event));
  json_object_set_new (j, "detail", detail ? detail : json_object ());
  CLEANUP_FREE char *line = json_dumps (j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref (j);
  CLEANUP_FREE char *path = NULL;
  if (!line || asprintf (&path, "%s/%s", ev->workdir, V2K_EVENTS_FILE) < 0) {
    path = NULL;
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  size_t len = strlen (line);
  CLEANUP_FREE char *buf = malloc (len + 1);
  if (!buf) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  memcpy (buf, line, len);
  buf[len] = '\n';
  CLEANUP_CLOSE int fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "opening %s", path);
    return -1;
  }
  /* One write() per line: O_APPEND makes it atomic against other writers. */
  ssize_t n = write (fd, buf, len + 1);
  if (n != (ssize_t) (len + 1)) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "appending to %s", path);
    return -1;
  }
  return 0;
}

json_t *
v2k_events_tail (const char *workdir, size_t n, struct v2k_error *err)
{
  CLEANUP_FREE char *path = NULL;
  if (asprintf (&path, "%s/%s", workdir, V2K_EVENTS_FILE) < 0) {
    path = NULL;
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  json_t *out = json_array ();
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return out;
    json_decref (out);
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "opening %s", path);
    return NULL;
  }
  if (n == 0)
    return out;
  struct stat st;
  if (fstat (fd, &st) < 0) {
    json_decref (out);
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "%s", path);
    return NULL;
  }
  /* Read backwards in growing windows until N complete lines are in view,
   * so that a long log costs only its tail. */
  off_t size = st.st_size, window = 64 * 1024;
  CLEANUP_FREE char *buf = NULL;
  off_t start;
  for (;;) {
    start = size > window ? size - window : 0;
    size_t len = (size_t) (size - start);
    free (buf);
    buf = malloc (len + 1);
    if (!buf) {
      json_decref (out);
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return NULL;
    }
    ssize_t got = pread (fd, buf, len, start);
    if (got < 0) {
      json_decref (out);
      v2k_error_errno (err, V2K_EXIT_WORKDIR, "reading %s", path);
      return NULL;
    }
    buf[got] = '\0';
    size_t lines = 0;
    for (ssize_t i = 0; i < got; i++)
      lines += buf[i] == '\n';
    if (start == 0 || lines > n)
      break;
    window *= 4;
  }
  /* Collect line starts; skip a partial first line when not at the file start. */
  char *p = buf;
  if (start > 0) {
    char *nl = strchr (p, '\n');
    p = nl ? nl + 1 : p + strlen (p);
  }
  size_t count = 0;
  for (char *q = p; *q; q++)
    count += *q == '\n';
  size_t skip = count > n ? count - n : 0;
  for (char *line = p; *line; ) {
    char *nl = strchr (line, '\n');
    if (!nl)
      break;  /* an unterminated last line is still being written */
    *nl = '\0';
    if (skip > 0)
      skip--;
    else {
      json_t *ev = json_loads (line, 0, NULL);
      if (ev)
        json_array_append_new (out, ev);
    }
    line = nl + 1;
  }
  return out;
}
