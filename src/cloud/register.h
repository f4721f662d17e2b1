/* Registering the migrated VM in the ABLESTACK cloud (Mold) or upstream
 * CloudStack: a read-only preflight that refuses before the source is shut
 * down, then import every volume (root first), deploy the VM stopped with a
 * VM id chosen by the tool, verify the NICs and MACs, make the root volume
 * ROOT (always with its path), attach the data disks (device ids 1, 2, 4,
 * …), verify, and start only when asked. Every id and job id is saved
 * before the next step; a re-run polls and finds instead of creating again.
 * A failure before the start rolls back (detach, unmanage, destroy the empty
 * VM) unless --on-failure keep; disk images are never deleted. */
#ifndef V2K_CLOUD_REGISTER_H
#define V2K_CLOUD_REGISTER_H

#include <signal.h>
#include <stdbool.h>
#include "client.h"
#include "creds.h"
#include "../state/events.h"
#include "../state/manifest.h"

enum { CLOUD_ON_FAILURE_ROLLBACK, CLOUD_ON_FAILURE_KEEP };

struct v2k_register_opts {
  struct v2k_cloud_creds_args creds;
  int signature;                  /* enum v2k_cloud_alg, or -1: auto */
  const char *ca_file;
  bool insecure;
  const char *zone, *service_offering, *storage, *disk_offering, *host;
  const char *account, *domain, *project, *name;
  const char **net_map;           /* "VMware network=<network id>" */
  size_t n_net_map;
  int64_t cpu_speed;              /* MHz, sent only when the offering leaves it open */
  bool start;
  int on_failure;
  int job_timeout;
};

struct v2k_register_ctx {
  struct v2k_manifest *m;
  struct v2k_events *ev;
  int (*save) (void *opaque, struct v2k_error *err);
  void *opaque;
  volatile sig_atomic_t *stop;
  struct v2k_cloud *cloud;        /* set by the preflight */
  bool virtio;                    /* the guest was converted */
};

/* Read-only checks; opens RC->cloud. Any failure names the setting to fix. */
int v2k_register_preflight (struct v2k_register_ctx *rc, const struct v2k_register_opts *o,
                            struct v2k_error *err);
/* The registration itself (resumable); needs a successful preflight. */
int v2k_register_apply (struct v2k_register_ctx *rc, const struct v2k_register_opts *o,
                        struct v2k_error *err);
void v2k_register_close (struct v2k_register_ctx *rc);

#endif
