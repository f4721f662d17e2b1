/* Sources: a disk as of a snapshot, served over NBD. `file` runs qemu-nbd on
 * the snapshot's VMDK descriptor found through the datastore map (qemu
 * follows delta chains); `vddk` runs nbdkit's vddk plugin behind the retry
 * and blocksize filters, the password passed through an inherited pipe;
 * `nbd` reaches a given URI. */
#ifndef V2K_SOURCE_H
#define V2K_SOURCE_H

#include "endpoint.h"
#include "server.h"
#include "../state/manifest.h"

struct v2k_source_args {
  const struct v2k_manifest *m;
  const struct v2k_disk *disk;
  const char *snapshot;          /* moref */
  const char *file_name;         /* the snapshot's backing "[ds] dir/file.vmdk" */
  const char *rundir;
  const char *workdir;
  const char *password;          /* vSphere password, for vddk only */
  const char *vcenter_host;      /* for vddk's server= */
  const char *username;
  int connections;
};

/* Resolves "[ds] dir/file.vmdk" through the manifest's datastore map. */
char *v2k_source_local_path (const struct v2k_manifest *m, const char *file_name,
                             struct v2k_error *err);

struct v2k_endpoint *v2k_source_open (const struct v2k_source_args *a, struct v2k_server *srv,
                                      struct v2k_error *err);

#endif
