#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "target.h"
#include "../util/crashpoint.h"
#include "file.h"
#include "rbd.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"
#include "../util/spawn.h"

static bool
dir_has_entries (const char *path, const char *prefix)
{
  DIR *d = opendir (path);
  if (!d)
    return false;
  bool found = false;
  struct dirent *e;
  while (!found && (e = readdir (d)))
    if (e->d_name[0] != '.' && (!prefix || strncmp (e->d_name, prefix, strlen (prefix)) == 0))
      found = true;
  closedir (d);
  return found;
}

static bool
mounted (dev_t dev)
{
  CLEANUP_FCLOSE FILE *fp = fopen ("/proc/self/mountinfo", "re");
  char line[4096];
  while (fp && fgets (line, sizeof line, fp)) {
    unsigned ma, mi;
    if (sscanf (line, "%*d %*d %u:%u", &ma, &mi) == 2 && ma == major (dev) && mi == minor (dev))
      return true;
  }
  CLEANUP_FCLOSE FILE *sw = fopen ("/proc/swaps", "re");
  struct stat st;
  while (sw && fgets (line, sizeof line, sw)) {
    char path[1024];
    if (sscanf (line, "%1023s", path) == 1 && stat (path, &st) == 0 && S_ISBLK (st.st_mode) &&
        st.st_rdev == dev)
      return true;
  }
  return false;
}

/* blkid -p probes the device itself (no cache): any filesystem, RAID or LVM
 * signature makes it print TYPE=… . */
static char *
signature (const char *dev)
{
  CLEANUP_FREE char *tmp = strdup ("/tmp/v2k-blkid-XXXXXX");
  int fd = tmp ? mkstemp (tmp) : -1;
  if (fd < 0)
    return NULL;
  close (fd);
  const char *argv[] = { "blkid", "-p", "-o", "export", "--", dev, NULL };
  struct v2k_spawn sp = { .argv = argv, .log_file = tmp };
  struct v2k_error ignored = { 0 };
  int status;
  char *found = NULL;
  if (v2k_spawn_run (&sp, &status, &ignored) == 0 && status == 0) {
    CLEANUP_FCLOSE FILE *fp = fopen (tmp, "re");
    char line[512];
    while (fp && fgets (line, sizeof line, fp))
      if (strncmp (line, "TYPE=", 5) == 0 || strncmp (line, "PTTYPE=", 7) == 0) {
        line[strcspn (line, "\n")] = '\0';
        found = strdup (line);
        break;
      }
  }
  unlink (tmp);
  return found;
}

int
v2k_block_device_check (const char *dev, int64_t capacity, bool force, struct v2k_error *err)
{
  struct stat st;
  if (stat (dev, &st) < 0) {
    v2k_error_errno (err, V2K_EXIT_TARGET, "block target %s", dev);
    return -1;
  }
  if (!S_ISBLK (st.st_mode)) {
    v2k_error_set (err, V2K_EXIT_TARGET, "block target %s is not a block device", dev);
    return -1;
  }
  char sys[256];
  snprintf (sys, sizeof sys, "/sys/dev/block/%u:%u/partition", major (st.st_rdev), minor (st.st_rdev));
  if (access (sys, F_OK) == 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "block target %s is a partition; give a whole disk", dev);
    return -1;
  }
  if (mounted (st.st_rdev)) {
    v2k_error_set (err, V2K_EXIT_TARGET, "block target %s is mounted or used as swap", dev);
    return -1;
  }
  snprintf (sys, sizeof sys, "/sys/dev/block/%u:%u/holders", major (st.st_rdev), minor (st.st_rdev));
  if (dir_has_entries (sys, NULL)) {
    v2k_error_set (err, V2K_EXIT_TARGET,
                   "block target %s has holders (device-mapper, LVM or RAID uses it)", dev);
    return -1;
  }
  char devname[128];
  snprintf (sys, sizeof sys, "/sys/dev/block/%u:%u", major (st.st_rdev), minor (st.st_rdev));
  char link[512];
  ssize_t n = readlink (sys, link, sizeof link - 1);
  if (n > 0) {
    link[n] = '\0';
    const char *base = strrchr (link, '/');
    snprintf (devname, sizeof devname, "%s", base ? base + 1 : link);
    if (dir_has_entries (sys, devname)) {
      v2k_error_set (err, V2K_EXIT_TARGET, "block target %s has partitions", dev);
      return -1;
    }
  }
  if (!force) {
    CLEANUP_FREE char *sig = signature (dev);
    if (sig) {
      v2k_error_set (err, V2K_EXIT_TARGET,
                     "block target %s carries a signature (%s); wipe it first, or pass "
                     "--force-block-device if you are sure", dev, sig);
      return -1;
    }
  }
  /* O_EXCL on a block device fails while anything else has it open exclusively. */
  CLEANUP_CLOSE int fd = open (dev, O_RDONLY | O_EXCL | O_CLOEXEC);
  if (fd < 0) {
    v2k_error_errno (err, V2K_EXIT_TARGET, "block target %s is in use", dev);
    return -1;
  }
  uint64_t size = 0;
  if (ioctl (fd, BLKGETSIZE64, &size) < 0) {
    v2k_error_errno (err, V2K_EXIT_TARGET, "block target %s: size", dev);
    return -1;
  }
  if ((int64_t) size < capacity) {
    v2k_error_set (err, V2K_EXIT_TARGET, "block target %s has %llu bytes; the disk needs %lld",
                   dev, (unsigned long long) size, (long long) capacity);
    return -1;
  }
  return 0;
}

int
v2k_target_prepare (const struct v2k_target_args *a, bool recreate, bool *fresh,
                    struct v2k_error *err)
{
  struct v2k_disk *d = a->disk;
  const char *fmt = v2k_format_names[a->m->target.format];
  *fresh = false;
  switch (a->m->target.storage) {
  case STORAGE_FILE: {
    bool exists = access (d->target_path, F_OK) == 0;
    if (exists && !d->target_created) {
      v2k_error_set (err, V2K_EXIT_TARGET,
                     "target %s already exists and this run did not create it; move it away or "
                     "choose another --dst/--target-map", d->target_path);
      return -1;
    }
    if (exists && recreate && unlink (d->target_path) < 0) {
      v2k_error_errno (err, V2K_EXIT_TARGET, "removing %s to recreate it", d->target_path);
      return -1;
    }
    if (!exists || recreate) {
      CLEANUP_FREE char *dir = strdup (d->target_path);
      char *slash = dir ? strrchr (dir, '/') : NULL;
      if (slash && slash != dir) {
        *slash = '\0';
        if (v2k_mkdir_p (dir, 0755, err) == -1 || access (dir, W_OK) < 0) {
          if (!v2k_error_isset (err))
            v2k_error_errno (err, V2K_EXIT_TARGET, "target directory %s", dir);
          err->code = V2K_EXIT_TARGET;
          return -1;
        }
      }
      d->target_created = true;
      if (a->claim && a->claim (a->claim_opaque, err) == -1)
        return -1;
      v2k_crashpoint ("target:claimed");
      if (v2k_image_create (d->target_path, fmt, d->capacity, err) == -1)
        return -1;
      *fresh = true;
    }
    return 0;
  }
  case STORAGE_BLOCK:
    return v2k_block_device_check (d->target_path, d->capacity, a->force_block_device, err);
  case STORAGE_RBD: {
    bool created = false;
    struct v2k_rbd_conn rc = { a->ceph_conf, a->ceph_id, a->ceph_timeout };
    bool was_ours = d->target_created;
    d->target_created = true;           /* claimed only if it is created */
    int r = v2k_rbd_prepare (d->target_path, &rc, d->capacity, was_ours, recreate, a->claim,
                             a->claim_opaque, &created, err);
    if (!created)
      d->target_created = was_ours;
    if (r == -1)
      return -1;
    if (created) {
      d->target_created = true;
      *fresh = true;
    }
    return 0;
  }
  }
  return -1;
}

/* An opened target must hold the whole disk; WHAT names it in the error. */
static struct v2k_endpoint *
whole_disk (struct v2k_endpoint *ep, const struct v2k_target_args *a, const char *what,
            struct v2k_error *err)
{
  if (ep && ep->size < a->disk->capacity) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s %s is %lld bytes; the disk needs %lld", what,
                   a->disk->target_path, (long long) ep->size, (long long) a->disk->capacity);
    v2k_endpoint_close (ep);
    return NULL;
  }
  return ep;
}

struct v2k_endpoint *
v2k_target_open (const struct v2k_target_args *a, struct v2k_server *srv, struct v2k_error *err)
{
  char name[128];
  snprintf (name, sizeof name, "target-%lld", (long long) a->disk->key);
  if (a->m->target.storage == STORAGE_RBD) {
    struct v2k_rbd_conn rc = { a->ceph_conf, a->ceph_id, a->ceph_timeout };
    return whole_disk (v2k_rbd_open (a->disk->target_path, name, &rc, err), a, "RBD image", err);
  }
  /* Raw files and block devices are the bytes themselves: written with
   * pwrite they need no qemu-nbd, and make bench measured that faster. */
  if (a->m->target.storage == STORAGE_BLOCK || a->m->target.format == FORMAT_RAW)
    return whole_disk (v2k_file_open (a->disk->target_path, name, true, err), a, "target", err);
  if (v2k_server_qemu_nbd (a->rundir, name, a->disk->target_path, "qcow2", false, a->connections,
                           srv, err) == -1)
    return NULL;
  return whole_disk (v2k_nbd_open (srv->uri, name, true, (size_t) a->connections, err), a,
                     "target", err);
}
