/* One copying engine, many endpoints, after nbdcopy's design: each kind of
 * endpoint (an NBD server through libnbd, a Ceph RBD image through librbd)
 * implements this ops table, and copy.c drives any source into any target.
 * All I/O is asynchronous and completes inside dispatch(), on the engine's
 * thread, so the engine needs no locks. */
#ifndef V2K_ENDPOINT_H
#define V2K_ENDPOINT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extents.h"
#include "../util/error.h"

struct v2k_io;
/* Called once per started operation; ERRNUM is 0 on success. */
typedef void (*v2k_io_done_fn) (struct v2k_io *io, int errnum);

struct v2k_io {
  v2k_io_done_fn done;
  void *owner;
};

struct v2k_endpoint;

struct v2k_endpoint_ops {
  const char *kind;
  int (*read) (struct v2k_endpoint *ep, size_t conn, void *buf, size_t len, int64_t off,
               struct v2k_io *io);
  int (*write) (struct v2k_endpoint *ep, size_t conn, const void *buf, size_t len, int64_t off,
                struct v2k_io *io);
  /* Makes [off, off+len) read as zeros, without sending data. */
  int (*zero) (struct v2k_endpoint *ep, size_t conn, size_t len, int64_t off, struct v2k_io *io);
  int (*flush) (struct v2k_endpoint *ep, struct v2k_io *io);
  /* Fills up to MAX pollfds for the engine's poll(); returns how many. */
  size_t (*pollfds) (struct v2k_endpoint *ep, struct pollfd *fds, size_t max);
  /* Processes the events poll() returned for those fds; runs completions. */
  int (*dispatch) (struct v2k_endpoint *ep, const struct pollfd *fds, size_t n);
  /* The allocated (non-hole, non-zero) extents, or -1 if unknown. */
  int (*allocated) (struct v2k_endpoint *ep, v2k_extents *out, struct v2k_error *err);
  /* Appends to OUT the parts of AREAS (sorted, apart) that the endpoint
   * promises read as zeros. Returns 1 if it answered, 0 if it cannot tell,
   * -1 with ERR set on failure. NULL where unknown. */
  int (*zeros) (struct v2k_endpoint *ep, const v2k_extents *areas, v2k_extents *out,
                struct v2k_error *err);
  void (*close) (struct v2k_endpoint *ep);
};

struct v2k_endpoint {
  const struct v2k_endpoint_ops *ops;
  char *name;               /* for messages: "source scsi0:0" */
  int64_t size;
  size_t nconn;             /* parallel connections the engine may use */
  size_t max_request;       /* the largest request the endpoint takes */
  char last_error[256];     /* the server's words for the last failed operation */
  void *priv;
};

/* Opens an NBD endpoint: URI is nbd://, nbd+unix://…?socket=… . CONNECTIONS
 * is the wish; it drops to 1 for a writable export without multi-conn. */
struct v2k_endpoint *v2k_nbd_open (const char *uri, const char *name, bool writable,
                                   size_t connections, struct v2k_error *err);

void v2k_endpoint_close (struct v2k_endpoint *ep);

/* The allocated op of an endpoint that cannot tell (one that only serves
 * targets). */
static inline int
v2k_allocated_unknown (struct v2k_endpoint *ep, v2k_extents *out, struct v2k_error *err)
{
  (void) ep, (void) out, (void) err;
  return -1;
}

#endif
