#include <dirent.h>
#include <endian.h>
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

/* ---- target identity ---- */

static void
identity_clear (struct v2k_target_identity *id)
{
  free (id->serial);
  free (id->image_id);
  free (id->recorded);
  memset (id, 0, sizeof *id);
}

/* A file's virtual size as its format says: raw is the file's length, qcow2
 * the header's size field. -1 when the header cannot be read. */
static int64_t
file_virtual_size (const char *path, int format, const struct stat *st)
{
  if (format == FORMAT_RAW)
    return st->st_size;
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_CLOEXEC);
  unsigned char h[32];
  if (fd < 0 || pread (fd, h, sizeof h, 0) != (ssize_t) sizeof h || memcmp (h, "QFI\xfb", 4) != 0)
    return -1;
  uint64_t be;
  memcpy (&be, h + 24, sizeof be);
  return (int64_t) be64toh (be);
}

/* What names a block device beyond its number: a WWN or serial where the
 * kernel has one, a device-mapper uuid, or a loop device's backing file (a
 * loop device re-attached to another file keeps its number). */
static char *
block_serial (dev_t rdev)
{
  static const char *const attrs[] = { "wwid", "device/wwid", "device/serial", "serial",
                                       "dm/uuid", NULL };
  char path[256], buf[256];
  for (size_t i = 0; attrs[i]; i++) {
    snprintf (path, sizeof path, "/sys/dev/block/%u:%u/%s", major (rdev), minor (rdev), attrs[i]);
    CLEANUP_FCLOSE FILE *fp = fopen (path, "re");
    if (fp && fgets (buf, sizeof buf, fp)) {
      buf[strcspn (buf, "\n")] = '\0';
      if (buf[0])
        return strdup (buf);
    }
  }
  snprintf (path, sizeof path, "/sys/dev/block/%u:%u/loop/backing_file", major (rdev), minor (rdev));
  CLEANUP_FCLOSE FILE *fp = fopen (path, "re");
  struct stat st;
  if (fp && fgets (buf, sizeof buf, fp)) {
    buf[strcspn (buf, "\n")] = '\0';
    char out[128];
    if (stat (buf, &st) == 0)
      snprintf (out, sizeof out, "loop:%llu:%llu", (unsigned long long) st.st_dev,
                (unsigned long long) st.st_ino);
    else
      snprintf (out, sizeof out, "loop:deleted");
    return strdup (out);
  }
  return NULL;
}

/* What the target is now; *MISSING when nothing is there. */
static int
identify (const struct v2k_target_args *a, struct v2k_target_identity *id, bool *missing,
          struct v2k_error *err)
{
  const char *path = a->disk->target_path;
  struct stat st;
  memset (id, 0, sizeof *id);
  *missing = false;
  if (a->m->target.storage == STORAGE_RBD) {
    struct v2k_rbd_conn rc = { a->ceph_conf, a->ceph_id, a->ceph_timeout };
    if (v2k_rbd_identity (path, &rc, &id->image_id, &id->size, err) == -1)
      return -1;
    *missing = !id->image_id;
    return 0;
  }
  if (stat (path, &st) < 0) {
    if (errno == ENOENT) {
      *missing = true;
      return 0;
    }
    v2k_error_errno (err, V2K_EXIT_TARGET, "target %s", path);
    return -1;
  }
  if (a->m->target.storage == STORAGE_BLOCK) {
    if (!S_ISBLK (st.st_mode))
      return 0;   /* device 0: never the recorded one */
    id->device = (int64_t) st.st_rdev;
    CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_CLOEXEC);
    uint64_t size = 0;
    if (fd < 0 || ioctl (fd, BLKGETSIZE64, &size) < 0) {
      v2k_error_errno (err, V2K_EXIT_TARGET, "block target %s: size", path);
      return -1;
    }
    id->size = (int64_t) size;
    id->serial = block_serial (st.st_rdev);
    return 0;
  }
  if (!S_ISREG (st.st_mode))
    return 0;
  id->device = (int64_t) st.st_dev;
  id->inode = (int64_t) st.st_ino;
  id->size = file_virtual_size (path, a->m->target.format, &st);
  return 0;
}

/* Records what the target is now, as this run's. */
static int
identity_record (const struct v2k_target_args *a, struct v2k_error *err)
{
  struct v2k_target_identity now;
  bool missing;
  if (identify (a, &now, &missing, err) == -1)
    return -1;
  if (missing || now.size < a->disk->capacity) {
    identity_clear (&now);
    v2k_error_set (err, V2K_EXIT_TARGET, "target %s %s just after it was prepared",
                   a->disk->target_path, missing ? "vanished" : "is smaller than the disk");
    return -1;
  }
  char ts[32];
  v2k_now_rfc3339 (ts);
  now.recorded = strdup (ts);
  struct v2k_target_identity *id = a->disk->target_identity;
  if (!id && !(id = calloc (1, sizeof *id))) {
    identity_clear (&now);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  identity_clear (id);
  *id = now;
  a->disk->target_identity = id;
  return 0;
}

static bool
same_str (const char *x, const char *y)
{
  return (!x && !y) || (x && y && strcmp (x, y) == 0);
}

int
v2k_target_check (const struct v2k_target_args *a, struct v2k_error *err)
{
  const struct v2k_target_identity *want = a->disk->target_identity;
  struct v2k_target_identity now;
  bool missing;
  if (!want) {
    /* Nothing recorded (a manifest from before identities, or a kill
     * between the claim and the creation): only a target that already
     * holds committed data must be there. */
    if (!a->disk->target_created || !a->disk->cbt.change_id)
      return 0;
    if (identify (a, &now, &missing, err) == -1)
      return -1;
    identity_clear (&now);
    if (!missing)
      return 0;
    v2k_error_set (err, V2K_EXIT_TARGET,
                   "disk %s: target %s, created by this run, is missing; nothing was written: "
                   "run 'sync base --full' to copy the disk again", a->disk->id,
                   a->disk->target_path);
    return -1;
  }
  if (identify (a, &now, &missing, err) == -1)
    return -1;
  char what[256] = "";
  if (missing)
    snprintf (what, sizeof what, "is missing");
  else if (now.device != want->device || now.inode != want->inode ||
           !same_str (now.serial, want->serial) || !same_str (now.image_id, want->image_id))
    snprintf (what, sizeof what, "was replaced (it is not the %s this run recorded)",
              a->m->target.storage == STORAGE_RBD ? "image" :
              a->m->target.storage == STORAGE_BLOCK ? "device" : "file");
  else if (now.size < 0)
    snprintf (what, sizeof what, "was truncated (its %s header is gone)",
              v2k_format_names[a->m->target.format]);
  else if (now.size != want->size)
    snprintf (what, sizeof what, "was %s from %lld to %lld bytes",
              now.size < want->size ? "truncated" : "resized",
              (long long) want->size, (long long) now.size);
  identity_clear (&now);
  if (!what[0])
    return 0;
  v2k_error_set (err, V2K_EXIT_TARGET,
                 "disk %s: target %s %s since %s; its data cannot be trusted and nothing was "
                 "written: run 'sync base --full' to copy the disk again",
                 a->disk->id, a->disk->target_path, what, want->recorded);
  return -1;
}

int
v2k_targets_check (struct v2k_manifest *m, const char *ceph_conf, const char *ceph_id,
                   int ceph_timeout, struct v2k_error *err)
{
  for (size_t i = 0; i < m->n_disks; i++) {
    struct v2k_target_args a = { .m = m, .disk = &m->disks[i],
                                 .ceph_conf = ceph_conf ? ceph_conf : m->target.ceph_conf,
                                 .ceph_id = ceph_id ? ceph_id : m->target.ceph_id,
                                 .ceph_timeout = ceph_timeout };
    if (v2k_target_check (&a, err) == -1)
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
  if (!recreate && v2k_target_check (a, err) == -1)
    return -1;
  switch (a->m->target.storage) {
  case STORAGE_FILE: {
    bool exists = access (d->target_path, F_OK) == 0;
    if (exists && !d->target_created) {
      v2k_error_set (err, V2K_EXIT_TARGET,
                     "target %s already exists and this run did not create it; move it away or "
                     "choose another --dst/--target-map", d->target_path);
      return -1;
    }
    if (!exists && d->target_created && !recreate) {
      /* Created before, gone now, and no identity to name it by (a
       * manifest from before identities): the same refusal. */
      v2k_error_set (err, V2K_EXIT_TARGET,
                     "disk %s: target %s, created by this run, is missing; nothing was written: "
                     "run 'sync base --full' to copy the disk again", d->id, d->target_path);
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
      return identity_record (a, err);
    }
    return d->target_identity ? 0 : identity_record (a, err);
  }
  case STORAGE_BLOCK:
    if (v2k_block_device_check (d->target_path, d->capacity, a->force_block_device, err) == -1)
      return -1;
    /* A fresh base copy adopts the device; later syncs check it. */
    return recreate || !d->target_identity ? identity_record (a, err) : 0;
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
    return created || !d->target_identity ? identity_record (a, err) : 0;
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
