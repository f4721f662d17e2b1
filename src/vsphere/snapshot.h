/* Snapshots of the VM: create (memory off), find one by exact name for
 * crash adoption, read the per-disk changeId and backing from the
 * snapshot's own config, and remove by moref. */
#ifndef V2K_VSPHERE_SNAPSHOT_H
#define V2K_VSPHERE_SNAPSHOT_H

#include <stdbool.h>
#include "soap.h"
#include "task.h"
#include "../state/manifest.h"

/* CreateSnapshot_Task; *MOREF gets the new snapshot. */
int v2k_snapshot_create (struct v2k_soap *s, const char *vm, const char *name, bool quiesce,
                         int timeout, v2k_task_progress_fn progress, void *opaque,
                         char **moref, struct v2k_error *err);
/* The moref of the VM's snapshot named exactly NAME, or NULL (with no
 * error) when there is none; more than one is an error. */
int v2k_snapshot_find (struct v2k_soap *s, const char *vm, const char *name, char **moref,
                       struct v2k_error *err);
/* Every snapshot of the VM whose name starts with PREFIX: NAMES and MOREFS
 * (NULL-terminated arrays to free with v2k_strv_free). */
int v2k_snapshot_list_prefixed (struct v2k_soap *s, const char *vm, const char *prefix,
                                char ***names, char ***morefs, struct v2k_error *err);
void v2k_strv_free (char **v);

/* Fills SNAP->disks for the disks of M (by key) from the snapshot's config. */
int v2k_snapshot_read_disks (struct v2k_soap *s, const char *snapshot,
                             const struct v2k_manifest *m, struct v2k_snapshot *snap,
                             struct v2k_error *err);
/* RemoveSnapshot_Task with removeChildren=false, consolidate=true. */
int v2k_snapshot_remove (struct v2k_soap *s, const char *snapshot, int timeout,
                         struct v2k_error *err);

#endif
