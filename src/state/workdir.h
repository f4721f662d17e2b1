/* The workdir: /var/lib/ablestack-v2k/<vm>/<run_id>/ by default, mode 0700. */
#ifndef V2K_WORKDIR_H
#define V2K_WORKDIR_H

#include <stddef.h>
#include "../util/error.h"

#define V2K_WORKDIR_ROOT "/var/lib/ablestack-v2k"

/* A new run id: UTC "YYYYMMDD-HHMMSS-" plus 8 random hex digits. */
void v2k_run_id_new (char out[32]);

/* NAME made safe as one path component: anything but [A-Za-z0-9._-]
 * becomes '_', a leading dot is replaced, and the length is capped. */
char *v2k_safe_name (const char *name);

/* Creates ROOT/<safe vm>/<run_id> with mode 0700; returns its path. */
char *v2k_workdir_create (const char *root, const char *vm_name,
                          const char *run_id, struct v2k_error *err);

/* Checks that DIR is an existing, readable workdir with a manifest. */
int v2k_workdir_check (const char *dir, struct v2k_error *err);

#endif
