/* What `status` reports: a stable JSON object (docs/status.md) built from
 * the manifest, the lock and the event log, and its readable rendering.
 * It takes no lock, so it works while another command runs. */
#ifndef V2K_STATUS_H
#define V2K_STATUS_H

#include <stdio.h>
#include <jansson.h>
#include "../util/error.h"

#define V2K_STATUS_SCHEMA "ablestack-v2k/status/v1"

json_t *v2k_status_build (const char *workdir, size_t nevents, struct v2k_error *err);
void v2k_status_print_text (FILE *out, const json_t *status);

#endif
