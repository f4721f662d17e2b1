/* sync base|incr|final: for every disk, the areas to copy (changed areas
 * from vSphere, or the source's block status when CBT has no answer), the
 * copy through the engine with disks in parallel, and the commit of each
 * disk's changeId and counters in one atomic manifest save after the target
 * is flushed. Base copies checkpoint and resume; incremental ones end by
 * removing the previous migration snapshot. */
#ifndef V2K_SYNC_H
#define V2K_SYNC_H

#include <stdbool.h>
#include "copy.h"
#include "../state/events.h"
#include "../state/manifest.h"
#include "../vsphere/soap.h"

struct v2k_sync_ctx {
  struct v2k_manifest *m;
  const char *workdir;
  struct v2k_events *ev;
  struct v2k_soap *soap;
  const char *username, *password;   /* for VDDK */
  int kind;                          /* enum v2k_snapshot_kind */
  bool full;                         /* sync base --full */
  int jobs;                          /* disks copied at once */
  int connections;                   /* per server */
  size_t request_size, max_inflight;
  int64_t coalesce_gap;
  bool force_block_device;
  double checkpoint_seconds;
  const char *ceph_conf, *ceph_id;   /* override the manifest's */
  int ceph_timeout;         /* base: flush and record a resume point this often */
  bool progress_bar;                 /* draw progress on stderr */
  int task_timeout;
};

int v2k_sync_run (struct v2k_sync_ctx *c, struct v2k_error *err);

#endif
