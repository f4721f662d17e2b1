/* Ceph RBD targets through librbd. */
#ifndef V2K_RBD_H
#define V2K_RBD_H

#include <stdbool.h>
#include <stdint.h>
#include "endpoint.h"

struct v2k_rbd_conn {
  const char *conf;   /* ceph.conf (default /etc/ceph/ceph.conf) */
  const char *id;     /* client id without "client." (default admin) */
  int timeout;        /* seconds to reach the monitors (default 10) */
};

/* Splits "rbd:POOL/IMAGE". */
int v2k_rbd_parse (const char *spec, char *pool, size_t plen, char *image, size_t ilen);

/* Creates the image at SIZE (rbd_create4) unless it exists. An existing
 * image is refused unless OURS (this run created it); with RECREATE it is
 * removed and created again. CLAIM (may be NULL) runs just before a create.
 * *CREATED tells whether a new image was made. */
int v2k_rbd_prepare (const char *spec, const struct v2k_rbd_conn *c, int64_t size, bool ours,
                     bool recreate, int (*claim) (void *, struct v2k_error *), void *claim_opaque,
                     bool *created, struct v2k_error *err);

/* The image's id and size; *IMAGE_ID stays NULL when the image does not
 * exist. A re-created image gets a new id. */
int v2k_rbd_identity (const char *spec, const struct v2k_rbd_conn *c, char **image_id,
                      int64_t *size, struct v2k_error *err);

struct v2k_endpoint *v2k_rbd_open (const char *spec, const char *name,
                                   const struct v2k_rbd_conn *c, struct v2k_error *err);

/* The monitors of the cluster in C's configuration as "host:port" strings
 * (the v1 address of each where it has one), for libvirt's RBD disks.
 * *MONS is a NULL-terminated array to free with v2k_strv_free. */
int v2k_rbd_monitors (const struct v2k_rbd_conn *c, char ***mons, size_t *n,
                      struct v2k_error *err);

#endif
