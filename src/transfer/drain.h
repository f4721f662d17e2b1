/* Ending an engine's I/O after an error: what was started must finish, or
 * be known never to finish, before its buffers can be freed. */
#ifndef V2K_DRAIN_H
#define V2K_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include "endpoint.h"

/* Whether anything started on side SIDE (0: the first endpoint, 1: the
 * second) has not completed yet. */
typedef bool (*v2k_waiting_fn) (void *opaque, int side);

/* Polls both endpoints until WAITING says nothing is in flight on a side
 * still alive, for at most TIMEOUT seconds. An endpoint whose dispatch fails
 * is dead (its server is gone: nothing more will arrive from it), so its
 * side is no longer waited for; the other side is, since its server may
 * still answer into the buffers. Completions run as usual. Returns false
 * when a live side still had requests in flight at the deadline: then the
 * buffers must not be freed (v2k_buffers_abandon). */
bool v2k_drain (struct v2k_endpoint *a, struct v2k_endpoint *b, v2k_waiting_fn waiting,
                void *opaque, double timeout);

/* Keeps memory that a server may still write into allocated (and reachable,
 * so that leak checkers do not count it) until the process exits. */
void v2k_buffers_abandon (void *ptr);

#endif
