/* The target and transport plans that init records: which file, device or
 * RBD image each disk goes to, and where its source data is read from. */
#ifndef V2K_PLAN_H
#define V2K_PLAN_H

#include <stddef.h>
#include "manifest.h"

struct v2k_plan_args {
  const char *dst;                /* --dst */
  int format, storage, transport; /* enums of manifest.h */
  const char **target_map;        /* "DISK=PATH" entries */
  size_t n_target_map;
  const char **datastore_map;     /* "NAME=DIR" entries */
  size_t n_datastore_map;
  const char *vddk_libdir, *vddk_thumbprint, *vddk_transports, *source_nbd;
  const char *ceph_conf, *ceph_id;
};

/* Checks the syntax of the maps, before anything else happens. */
int v2k_plan_check_args (const struct v2k_plan_args *a, struct v2k_error *err);
/* Gives every disk of M its target path and fills M->target and
 * M->transport. Refuses a map key that names no disk, two disks on one
 * path, a block or rbd disk without a mapping, and a disk on an unmapped
 * datastore with the file transport. */
int v2k_plan_apply (const struct v2k_plan_args *a, struct v2k_manifest *m, struct v2k_error *err);

#endif
