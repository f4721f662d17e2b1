#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "workdir.h"
#include "manifest.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"

void
v2k_run_id_new (char out[32])
{
  time_t now = time (NULL);
  struct tm tm;
  unsigned char rnd[4] = { 0 };
  gmtime_r (&now, &tm);
  if (getrandom (rnd, sizeof rnd, 0) != sizeof rnd) {
    unsigned long x = (unsigned long) getpid () ^ (unsigned long) now;
    memcpy (rnd, &x, sizeof rnd);
  }
  size_t n = strftime (out, 32, "%Y%m%d-%H%M%S", &tm);
  snprintf (out + n, 32 - n, "-%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
}

char *
v2k_safe_name (const char *name)
{
  size_t len = strlen (name);
  if (len > 128)
    len = 128;
  char *out = malloc (len + 2);
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char) name[i];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
      c == '.' || c == '_' || c == '-';
    out[i] = ok ? (char) c : '_';
  }
  out[len] = '\0';
  if (len == 0)
    strcpy (out, "_");
  else if (out[0] == '.')
    out[0] = '_';
  return out;
}

char *
v2k_workdir_create (const char *root, const char *vm_name, const char *run_id,
                    struct v2k_error *err)
{
  CLEANUP_FREE char *safe = v2k_safe_name (vm_name);
  char *path = NULL;
  if (!safe || asprintf (&path, "%s/%s/%s", root, safe, run_id) < 0) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  CLEANUP_FREE char *parent = NULL;
  if (asprintf (&parent, "%s/%s", root, safe) < 0) {
    parent = NULL;
    free (path);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  if (v2k_mkdir_p (parent, 0700, err) == -1) {
    free (path);
    return NULL;
  }
  if (mkdir (path, 0700) < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "creating workdir %s", path);
    free (path);
    return NULL;
  }
  return path;
}

int
v2k_workdir_check (const char *dir, struct v2k_error *err)
{
  struct stat st;
  if (stat (dir, &st) < 0) {
    if (errno == ENOENT)
      v2k_error_set (err, V2K_EXIT_WORKDIR,
                     "workdir %s does not exist; pass the path that init printed", dir);
    else
      v2k_error_errno (err, V2K_EXIT_WORKDIR, "workdir %s", dir);
    return -1;
  }
  if (!S_ISDIR (st.st_mode)) {
    v2k_error_set (err, V2K_EXIT_WORKDIR, "workdir %s is not a directory", dir);
    return -1;
  }
  if (access (dir, R_OK | X_OK) < 0) {
    v2k_error_errno (err, V2K_EXIT_WORKDIR, "workdir %s is not readable", dir);
    return -1;
  }
  CLEANUP_FREE char *manifest = NULL;
  if (asprintf (&manifest, "%s/%s", dir, V2K_MANIFEST_FILE) < 0) {
    manifest = NULL;
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  if (access (manifest, F_OK) < 0) {
    v2k_error_set (err, V2K_EXIT_WORKDIR,
                   "%s has no %s; is it a workdir created by ablestack_v2k init?", dir,
                   V2K_MANIFEST_FILE);
    return -1;
  }
  return 0;
}
