#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan.h"
#include "workdir.h"
#include "../util/cleanup.h"
#include "../util/strbuf.h"

static int
split_kv (const char *entry, const char *opt, char **key, char **value, struct v2k_error *err)
{
  const char *eq = strchr (entry, '=');
  if (!eq || eq == entry || !eq[1]) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s '%s': want KEY=VALUE", opt, entry);
    return -1;
  }
  *key = strndup (entry, (size_t) (eq - entry));
  *value = strdup (eq + 1);
  return 0;
}

static int
plan_error (struct v2k_error *err, int code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
static int
plan_error (struct v2k_error *err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (err->message, sizeof err->message, fmt, ap);
  va_end (ap);
  err->code = code;
  return 1;
}

static bool
valid_rbd (const char *v)
{
  if (strncmp (v, "rbd:", 4) != 0)
    return false;
  const char *pool = v + 4, *slash = strchr (pool, '/');
  return slash && slash > pool && slash[1] && !strchr (slash + 1, '/');
}

/* nbdkit's vddk plugin loads DIR/lib64/libvixDiskLib.so.N (N the major
 * version); without it every sync would fail much later. */
static bool
vddk_layout (const char *dir)
{
  CLEANUP_FREE char *lib64 = NULL;
  if (asprintf (&lib64, "%s/lib64", dir) < 0)
    return false;
  DIR *d = opendir (lib64);
  if (!d)
    return false;
  bool found = false;
  struct dirent *e;
  while (!found && (e = readdir (d)))
    found = strncmp (e->d_name, "libvixDiskLib.so.", 17) == 0;
  closedir (d);
  return found;
}

int
v2k_plan_check_args (const struct v2k_plan_args *a, struct v2k_error *err)
{
  for (size_t i = 0; i < a->n_target_map; i++) {
    char *k, *v;
    if (split_kv (a->target_map[i], "--target-map", &k, &v, err) == -1)
      return -1;
    int bad = 0;
    if (a->storage == STORAGE_BLOCK && strncmp (v, "/dev/", 5) != 0)
      bad = plan_error (err, V2K_EXIT_USAGE,
                           "--target-map %s: block storage needs a device path under /dev/", a->target_map[i]);
    else if (a->storage == STORAGE_RBD && !valid_rbd (v))
      bad = plan_error (err, V2K_EXIT_USAGE,
                           "--target-map %s: rbd storage needs rbd:POOL/IMAGE", a->target_map[i]);
    else if (a->storage == STORAGE_FILE && v[0] != '/')
      bad = plan_error (err, V2K_EXIT_USAGE,
                           "--target-map %s: file targets need an absolute path", a->target_map[i]);
    for (size_t j = 0; !bad && j < i; j++)
      if (strncmp (a->target_map[j], k, strlen (k)) == 0 && a->target_map[j][strlen (k)] == '=')
        bad = plan_error (err, V2K_EXIT_USAGE, "--target-map: disk %s is mapped twice", k);
    free (k);
    free (v);
    if (bad)
      return -1;
  }
  for (size_t i = 0; i < a->n_datastore_map; i++) {
    char *k, *v;
    if (split_kv (a->datastore_map[i], "--datastore-map", &k, &v, err) == -1)
      return -1;
    struct stat st;
    int bad = 0;
    if (v[0] != '/' || stat (v, &st) < 0 || !S_ISDIR (st.st_mode))
      bad = plan_error (err, V2K_EXIT_USAGE,
                           "--datastore-map %s: %s is not an existing directory", a->datastore_map[i], v);
    free (k);
    free (v);
    if (bad)
      return -1;
  }
  if (a->transport == TRANSPORT_FILE && a->n_datastore_map == 0) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "--transport file needs --datastore-map NAME=DIR for the datastores of the VM's disks");
    return -1;
  }
  if (a->transport == TRANSPORT_VDDK) {
    struct stat st;
    if (!a->vddk_libdir || !*a->vddk_libdir) {
      v2k_error_set (err, V2K_EXIT_USAGE,
                     "--transport vddk needs --vddk-libdir DIR (or VDDK_LIBDIR): the VMware VDDK "
                     "install; or use --transport file with --datastore-map");
      return -1;
    }
    if (stat (a->vddk_libdir, &st) < 0 || !S_ISDIR (st.st_mode)) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--vddk-libdir %s is not a directory", a->vddk_libdir);
      return -1;
    }
    if (!vddk_layout (a->vddk_libdir)) {
      v2k_error_set (err, V2K_EXIT_USAGE,
                     "--vddk-libdir %s is not a VDDK install: it has no lib64/libvixDiskLib.so.*; "
                     "give the directory that holds lib64 (e.g. /opt/vmware-vix-disklib-distrib)",
                     a->vddk_libdir);
      return -1;
    }
  }
  if (a->transport == TRANSPORT_NBD && (!a->source_nbd || strncmp (a->source_nbd, "nbd", 3) != 0)) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--transport nbd needs --source-nbd URI (nbd://… or nbd+unix://…)");
    return -1;
  }
  if ((a->ceph_conf || a->ceph_id) && a->storage != STORAGE_RBD) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--ceph-conf and --ceph-id belong to --target-storage rbd");
    return -1;
  }
  if (a->ceph_conf && access (a->ceph_conf, R_OK) < 0) {
    v2k_error_errno (err, V2K_EXIT_USAGE, "--ceph-conf %s", a->ceph_conf);
    return -1;
  }
  if (a->storage == STORAGE_FILE && (!a->dst || a->dst[0] != '/')) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--dst DIR is required and must be an absolute path");
    return -1;
  }
  return 0;
}

static const char *
map_lookup (const char **entries, size_t n, const char *key)
{
  size_t klen = strlen (key);
  for (size_t i = 0; i < n; i++)
    if (strncmp (entries[i], key, klen) == 0 && entries[i][klen] == '=')
      return entries[i] + klen + 1;
  return NULL;
}

int
v2k_plan_apply (const struct v2k_plan_args *a, struct v2k_manifest *m, struct v2k_error *err)
{
  for (size_t i = 0; i < a->n_target_map; i++) {
    size_t klen = strcspn (a->target_map[i], "=");
    bool found = false;
    for (size_t d = 0; d < m->n_disks; d++)
      found |= strlen (m->disks[d].id) == klen && strncmp (m->disks[d].id, a->target_map[i], klen) == 0;
    if (!found) {
      struct strbuf ids = { 0 };
      for (size_t d = 0; d < m->n_disks; d++)
        sb_addf (&ids, "%s%s", d ? ", " : "", m->disks[d].id);
      v2k_error_set (err, V2K_EXIT_USAGE, "--target-map %.*s: the VM has no such disk (it has %s)",
                     (int) klen, a->target_map[i], ids.s ? ids.s : "none");
      sb_free (&ids);
      return -1;
    }
  }
  CLEANUP_FREE char *safe = v2k_safe_name (m->source.vm.name);
  for (size_t d = 0; d < m->n_disks; d++) {
    struct v2k_disk *disk = &m->disks[d];
    const char *mapped = map_lookup (a->target_map, a->n_target_map, disk->id);
    free (disk->target_path);
    disk->target_path = NULL;
    if (mapped)
      disk->target_path = strdup (mapped);
    else if (a->storage == STORAGE_FILE) {
      if (asprintf (&disk->target_path, "%s/%s-disk%zu.%s", a->dst, safe, d,
                    v2k_format_names[a->format]) < 0)
        disk->target_path = NULL;
    }
    else {
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s has no --target-map entry; %s storage needs one per disk",
                     disk->id, v2k_storage_names[a->storage]);
      return -1;
    }
    for (size_t j = 0; j < d; j++)
      if (strcmp (m->disks[j].target_path, disk->target_path) == 0) {
        v2k_error_set (err, V2K_EXIT_USAGE, "disks %s and %s would both be written to %s",
                       m->disks[j].id, disk->id, disk->target_path);
        return -1;
      }
    if (a->transport == TRANSPORT_FILE &&
        !map_lookup (a->datastore_map, a->n_datastore_map, disk->datastore ? disk->datastore : "")) {
      v2k_error_set (err, V2K_EXIT_USAGE,
                     "disk %s is on datastore '%s', which no --datastore-map names", disk->id,
                     disk->datastore ? disk->datastore : "?");
      return -1;
    }
  }
  m->target.format = a->format;
  m->target.storage = a->storage;
  m->target.dst_dir = a->dst ? strdup (a->dst) : NULL;
  m->target.ceph_conf = a->ceph_conf ? strdup (a->ceph_conf) : NULL;
  m->target.ceph_id = a->ceph_id ? strdup (a->ceph_id) : NULL;
  m->transport.kind = a->transport;
  m->transport.vddk_libdir = a->vddk_libdir ? strdup (a->vddk_libdir) : NULL;
  m->transport.vddk_thumbprint = a->vddk_thumbprint ? strdup (a->vddk_thumbprint) : NULL;
  m->transport.vddk_transports = strdup (a->vddk_transports ? a->vddk_transports : "nbdssl:nbd");
  m->transport.source_nbd = a->source_nbd ? strdup (a->source_nbd) : NULL;
  m->transport.datastore_map = calloc (a->n_datastore_map ? a->n_datastore_map : 1,
                                       sizeof *m->transport.datastore_map);
  for (size_t i = 0; i < a->n_datastore_map; i++) {
    char *k, *v;
    if (split_kv (a->datastore_map[i], "--datastore-map", &k, &v, err) == -1)
      return -1;
    m->transport.datastore_map[i].key = k;
    m->transport.datastore_map[i].value = v;
    m->transport.n_datastore_map = i + 1;
  }
  return 0;
}
