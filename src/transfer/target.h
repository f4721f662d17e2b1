/* Targets: a qcow2 or raw file (created sparse by this run, served by
 * qemu-nbd), a raw block device (after safety checks), or a Ceph RBD image
 * (native librbd). */
#ifndef V2K_TARGET_H
#define V2K_TARGET_H

#include <stdbool.h>
#include "endpoint.h"
#include "server.h"
#include "../state/manifest.h"

struct v2k_target_args {
  const struct v2k_manifest *m;
  struct v2k_disk *disk;
  const char *rundir;
  int connections;
  bool force_block_device;   /* skip only the signature check */
  const char *ceph_conf, *ceph_id;
  int ceph_timeout;
  /* Called with disk->target_created just set, before the target is
   * created: the caller saves the manifest, so that a kill between the
   * creation and the next save cannot leave a target this run disowns. */
  int (*claim) (void *opaque, struct v2k_error *err);
  void *claim_opaque;
};

/* Makes sure the target exists and may be written. RECREATE is a fresh base
 * copy: a file or RBD target is created (recording target_created) or, when
 * this run created it before, replaced; a block device is adopted. Either
 * way its identity is recorded in the disk. Without RECREATE the target must
 * be the one recorded (v2k_target_check): a missing one is never created
 * again. A target this run did not create is never replaced. Sets *FRESH
 * when the target now reads all zeros. */
int v2k_target_prepare (const struct v2k_target_args *a, bool recreate, bool *fresh,
                        struct v2k_error *err);

/* Refuses (exit 9, naming what changed and the recovery) a target that is
 * no longer the one its recorded identity describes: missing, replaced (new
 * inode, device, serial or RBD image id), truncated or resized. A disk with
 * no recorded identity passes. */
int v2k_target_check (const struct v2k_target_args *a, struct v2k_error *err);

/* v2k_target_check for every disk of M (CEPH_CONF/CEPH_ID NULL: the
 * manifest's). */
int v2k_targets_check (struct v2k_manifest *m, const char *ceph_conf, const char *ceph_id,
                       int ceph_timeout, struct v2k_error *err);

struct v2k_endpoint *v2k_target_open (const struct v2k_target_args *a, struct v2k_server *srv,
                                      struct v2k_error *err);

/* The block device checks: a whole disk, not mounted, no holders or
 * partitions, no filesystem/RAID/LVM signature (unless FORCE), not in use,
 * at least CAPACITY bytes. Each refusal names its reason. */
int v2k_block_device_check (const char *dev, int64_t capacity, bool force,
                            struct v2k_error *err);

#endif
