/* The NBD endpoint: libnbd's asynchronous API over one or more connections. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libnbd.h>

#include "endpoint.h"
#include "../util/fsutil.h"

struct nbd_priv {
  struct nbd_handle **h;
  size_t n;
  size_t next_flush_conn;
  /* Set when the endpoint is closed: libnbd then retires the commands still
   * in flight (a dead server's, which the engine could not wait for) and
   * their requests' memory is gone, so nobody is told. */
  bool closing;
};

struct pending {
  struct v2k_io *io;
  struct v2k_endpoint *ep;
};

static int
completed (void *user_data, int *error)
{
  struct pending *p = user_data;
  const struct nbd_priv *priv = p->ep->priv;
  if (priv->closing)
    return 1;
  if (*error)
    snprintf (p->ep->last_error, sizeof p->ep->last_error, "%s", strerror (*error));
  p->io->done (p->io, *error);
  return 1;  /* retire the command; libnbd then frees P */
}

static nbd_completion_callback
callback (struct v2k_endpoint *ep, struct v2k_io *io)
{
  struct pending *p = malloc (sizeof *p);
  if (p) {
    p->io = io;
    p->ep = ep;
  }
  /* .free runs when libnbd drops the command, also one still in flight
   * when the handle is closed after an error. */
  return (nbd_completion_callback) { .callback = completed, .user_data = p, .free = free };
}

static int
started (struct v2k_endpoint *ep, int64_t cookie, nbd_completion_callback cb)
{
  if (!cb.user_data) {
    snprintf (ep->last_error, sizeof ep->last_error, "out of memory");
    return -1;
  }
  if (cookie == -1) {
    /* libnbd has already called .free on the callback. */
    snprintf (ep->last_error, sizeof ep->last_error, "%s", nbd_get_error ());
    return -1;
  }
  return 0;
}

static int
ep_read (struct v2k_endpoint *ep, size_t conn, void *buf, size_t len, int64_t off,
          struct v2k_io *io)
{
  struct nbd_priv *p = ep->priv;
  nbd_completion_callback cb = callback (ep, io);
  if (!cb.user_data)
    return started (ep, 0, cb);
  return started (ep, nbd_aio_pread (p->h[conn % p->n], buf, len, (uint64_t) off, cb, 0), cb);
}

static int
ep_write (struct v2k_endpoint *ep, size_t conn, const void *buf, size_t len, int64_t off,
           struct v2k_io *io)
{
  struct nbd_priv *p = ep->priv;
  nbd_completion_callback cb = callback (ep, io);
  if (!cb.user_data)
    return started (ep, 0, cb);
  return started (ep, nbd_aio_pwrite (p->h[conn % p->n], buf, len, (uint64_t) off, cb, 0), cb);
}

static int
ep_zero (struct v2k_endpoint *ep, size_t conn, size_t len, int64_t off, struct v2k_io *io)
{
  struct nbd_priv *p = ep->priv;
  nbd_completion_callback cb = callback (ep, io);
  if (!cb.user_data)
    return started (ep, 0, cb);
  return started (ep, nbd_aio_zero (p->h[conn % p->n], len, (uint64_t) off, cb, 0), cb);
}

static int
ep_flush (struct v2k_endpoint *ep, struct v2k_io *io)
{
  struct nbd_priv *p = ep->priv;
  nbd_completion_callback cb = callback (ep, io);
  if (!cb.user_data)
    return started (ep, 0, cb);
  /* With multi-conn (or a single connection) a flush on one connection
   * covers every write that has completed on any of them. */
  return started (ep, nbd_aio_flush (p->h[0], cb, 0), cb);
}

static size_t
ep_pollfds (struct v2k_endpoint *ep, struct pollfd *fds, size_t max)
{
  struct nbd_priv *p = ep->priv;
  size_t n = 0;
  for (size_t i = 0; i < p->n && n < max; i++) {
    unsigned dir = nbd_aio_get_direction (p->h[i]);
    fds[n].fd = nbd_aio_get_fd (p->h[i]);
    fds[n].events = (short) (((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                             ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0));
    fds[n].revents = 0;
    n++;
  }
  return n;
}

static int
ep_dispatch (struct v2k_endpoint *ep, const struct pollfd *fds, size_t n)
{
  struct nbd_priv *p = ep->priv;
  for (size_t i = 0; i < n && i < p->n; i++) {
    int r = 0;
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
      r = nbd_aio_notify_read (p->h[i]);
    else if (fds[i].revents & POLLOUT)
      r = nbd_aio_notify_write (p->h[i]);
    if (r == -1) {
      snprintf (ep->last_error, sizeof ep->last_error, "%s", nbd_get_error ());
      return -1;
    }
    if (nbd_aio_is_dead (p->h[i]) || nbd_aio_is_closed (p->h[i])) {
      snprintf (ep->last_error, sizeof ep->last_error, "connection lost: %s",
                nbd_get_error () ? nbd_get_error () : "server closed it");
      return -1;
    }
  }
  return 0;
}

/* Walks the server's base:allocation answers for [OFF, OFF+LEN), calling
 * EACH for every extent, until the range is covered. */
typedef int (*extent_fn) (void *opaque, int64_t start, int64_t length, uint32_t flags);

struct extent_ctx { extent_fn each; void *opaque; int64_t pos; int failed; };

static int
extent_cb (void *user_data, const char *metacontext, uint64_t offset, uint32_t *entries,
           size_t nr_entries, int *error)
{
  struct extent_ctx *c = user_data;
  (void) error;
  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  uint64_t pos = offset;
  for (size_t i = 0; i + 1 < nr_entries; i += 2) {
    if (c->each (c->opaque, (int64_t) pos, entries[i], entries[i + 1]) == -1)
      c->failed = 1;
    pos += entries[i];
  }
  c->pos = (int64_t) pos;
  return 0;
}

static int
block_status_walk (struct v2k_endpoint *ep, int64_t off, int64_t len, extent_fn each,
                   void *opaque, struct v2k_error *err)
{
  struct nbd_priv *p = ep->priv;
  struct nbd_handle *h = p->h[0];
  int64_t end = off + len;
  while (off < end) {
    int64_t chunk = end - off;
    if (chunk > (1LL << 30))
      chunk = 1LL << 30;
    struct extent_ctx c = { .each = each, .opaque = opaque, .pos = off };
    if (nbd_block_status (h, (uint64_t) chunk, (uint64_t) off,
                          (nbd_extent_callback) { .callback = extent_cb, .user_data = &c }, 0) == -1) {
      v2k_error_set (err, V2K_EXIT_TRANSFER, "%s: block status at %lld: %s", ep->name,
                     (long long) off, nbd_get_error ());
      return -1;
    }
    if (c.failed) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    if (c.pos <= off) {
      v2k_error_set (err, V2K_EXIT_TRANSFER, "%s: block status made no progress at %lld",
                     ep->name, (long long) off);
      return -1;
    }
    off = c.pos;
  }
  return 0;
}

static int
add_allocated (void *opaque, int64_t start, int64_t length, uint32_t flags)
{
  /* Only STATE_ZERO promises zeros: a hole without it may read as anything
   * (the NBD spec), so it is copied like data. */
  return (flags & LIBNBD_STATE_ZERO) ? 0 : v2k_extents_add (opaque, start, length);
}

static int
ep_allocated (struct v2k_endpoint *ep, v2k_extents *out, struct v2k_error *err)
{
  struct nbd_priv *p = ep->priv;
  if (nbd_can_meta_context (p->h[0], LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)
    return -1;
  return block_status_walk (ep, 0, ep->size, add_allocated, out, err);
}

/* Clips the zero extents the server reports to the areas; the cursor only
 * moves forward, because both come in ascending order. */
struct zeros_ctx { const v2k_extents *areas; size_t next; v2k_extents *out; };

static int
add_zeros (void *opaque, int64_t start, int64_t length, uint32_t flags)
{
  struct zeros_ctx *z = opaque;
  if (!(flags & LIBNBD_STATE_ZERO))
    return 0;
  int64_t end = start + length;
  for (; z->next < z->areas->len; z->next++) {
    const struct v2k_extent *a = &z->areas->ptr[z->next];
    if (a->start + a->length <= start)
      continue;
    if (a->start >= end)
      break;
    int64_t s = a->start > start ? a->start : start;
    int64_t e = a->start + a->length < end ? a->start + a->length : end;
    if (v2k_extents_add (z->out, s, e - s) == -1)
      return -1;
    if (a->start + a->length > end)
      break;  /* the rest of this area meets the next extent */
  }
  return 0;
}

static int
ep_zeros (struct v2k_endpoint *ep, const v2k_extents *areas, v2k_extents *out,
          struct v2k_error *err)
{
  struct nbd_priv *p = ep->priv;
  if (nbd_can_meta_context (p->h[0], LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)
    return 0;
  struct zeros_ctx z = { .areas = areas, .out = out };
  /* Ask about the areas only: a run of areas close together is one query,
   * and the space between far-apart areas is not asked about. */
  size_t i = 0;
  while (i < areas->len) {
    int64_t start = areas->ptr[i].start, end = start + areas->ptr[i].length;
    while (i + 1 < areas->len && areas->ptr[i + 1].start - end < (1 << 20) &&
           areas->ptr[i + 1].start + areas->ptr[i + 1].length - start <= (1LL << 30)) {
      i++;
      end = areas->ptr[i].start + areas->ptr[i].length;
    }
    i++;
    if (block_status_walk (ep, start, end - start, add_zeros, &z, err) == -1)
      return -1;
  }
  return 1;
}

static void
nbd_close_ep (struct v2k_endpoint *ep)
{
  struct nbd_priv *p = ep->priv;
  if (!p)
    return;
  p->closing = true;
  for (size_t i = 0; i < p->n; i++)
    if (p->h[i]) {
      nbd_shutdown (p->h[i], 0);
      nbd_close (p->h[i]);
    }
  free (p->h);
  free (p);
}

static const struct v2k_endpoint_ops nbd_ops = {
  .kind = "nbd",
  .read = ep_read,
  .write = ep_write,
  .zero = ep_zero,
  .flush = ep_flush,
  .pollfds = ep_pollfds,
  .dispatch = ep_dispatch,
  .allocated = ep_allocated,
  .zeros = ep_zeros,
  .close = nbd_close_ep,
};

static struct nbd_handle *
handle_new (const char *uri)
{
  struct nbd_handle *h = nbd_create ();
  if (!h)
    return NULL;
  nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  /* The engine never looks at a buffer whose read failed, so libnbd's
   * zeroing of every read buffer is a wasted pass over all the data. */
  nbd_set_pread_initialize (h, false);
  if (nbd_aio_connect_uri (h, uri) == -1) {
    nbd_close (h);
    return NULL;
  }
  return h;
}

/* Drives the handshakes of H[0..N) together until each is ready or has
 * failed, or TIMEOUT_MS has passed; a handle that is not ready by then is
 * closed and set to NULL. Servers that open something slow per connection
 * (VDDK logs in for each) take the time once, not once per connection. */
static void
handshakes (struct nbd_handle **h, size_t n, int timeout_ms)
{
  double deadline = v2k_monotonic_seconds () + timeout_ms / 1000.0;
  for (;;) {
    struct pollfd fds[16];
    size_t idx[16], k = 0;
    for (size_t i = 0; i < n && k < 16; i++)
      if (h[i] && nbd_aio_is_connecting (h[i]) == 1) {
        unsigned dir = nbd_aio_get_direction (h[i]);
        fds[k] = (struct pollfd) { .fd = nbd_aio_get_fd (h[i]),
                                   .events = (short) (((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                                                      ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0)) };
        idx[k++] = i;
      }
    double left = deadline - v2k_monotonic_seconds ();
    if (k == 0 || left <= 0)
      break;
    if (poll (fds, k, left < 0.1 ? (int) (left * 1000) + 1 : 100) < 0 && errno != EINTR)
      break;
    for (size_t j = 0; j < k; j++) {
      int r = 0;
      if (fds[j].revents & (POLLIN | POLLHUP | POLLERR))
        r = nbd_aio_notify_read (h[idx[j]]);
      else if (fds[j].revents & POLLOUT)
        r = nbd_aio_notify_write (h[idx[j]]);
      if (r == -1) {
        nbd_close (h[idx[j]]);
        h[idx[j]] = NULL;
      }
    }
  }
  for (size_t i = 0; i < n; i++)
    if (h[i] && nbd_aio_is_ready (h[i]) != 1) {
      nbd_close (h[i]);
      h[i] = NULL;
    }
}

/* The first connection, within TIMEOUT_MS. */
static struct nbd_handle *
connect_first (const char *uri, const char *name, int timeout_ms, struct v2k_error *err)
{
  struct nbd_handle *h = handle_new (uri);
  if (!h) {
    v2k_error_set (err, V2K_EXIT_TRANSFER, "%s: connecting to %s: %s", name, uri,
                   nbd_get_error () ? nbd_get_error () : "out of memory");
    return NULL;
  }
  double t0 = v2k_monotonic_seconds ();
  handshakes (&h, 1, timeout_ms);
  if (!h) {
    if (v2k_monotonic_seconds () - t0 >= timeout_ms / 1000.0)
      v2k_error_set (err, V2K_EXIT_TRANSFER, "%s: connecting to %s: no answer within %d s", name,
                     uri, timeout_ms / 1000);
    else
      v2k_error_set (err, V2K_EXIT_TRANSFER, "%s: connecting to %s: %s", name, uri,
                     nbd_get_error () ? nbd_get_error () : "the server closed the connection");
  }
  return h;
}

struct v2k_endpoint *
v2k_nbd_open (const char *uri, const char *name, bool writable, size_t connections,
              struct v2k_error *err)
{
  struct v2k_endpoint *ep = calloc (1, sizeof *ep);
  struct nbd_priv *p = calloc (1, sizeof *p);
  if (!ep || !p || !(ep->name = strdup (name))) {
    free (ep);
    free (p);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  ep->ops = &nbd_ops;
  ep->priv = p;
  if (connections < 1)
    connections = 1;
  p->h = calloc (connections, sizeof *p->h);
  double t0 = v2k_monotonic_seconds ();
  if (!p->h || !(p->h[0] = connect_first (uri, name, 30000, err)))
    goto fail;
  double first = v2k_monotonic_seconds () - t0;
  p->n = 1;
  struct nbd_handle *h = p->h[0];
  ep->size = nbd_get_size (h);
  if (ep->size < 0) {
    v2k_error_set (err, V2K_EXIT_TRANSFER, "%s: %s", name, nbd_get_error ());
    goto fail;
  }
  if (writable && nbd_is_read_only (h) == 1) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s: the NBD export is read-only", name);
    goto fail;
  }
  int64_t maxreq = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
  ep->max_request = maxreq > 0 ? (size_t) maxreq : 32u << 20;
  /* Writes over several connections are only safe to flush through one of
   * them when the server promises multi-conn consistency. */
  if (writable && nbd_can_multi_conn (h) != 1)
    connections = 1;
  /* Extra connections are a bonus: use what the server accepts. One that
   * takes fewer clients (qemu-nbd's --shared) leaves the rest hanging, so
   * they get three times what the first one took, plus a second: at least
   * 2 s, at most 30. */
  for (size_t i = 1; i < connections; i++)
    p->h[i] = handle_new (uri);
  int extra_ms = (int) (first * 3000) + 1000;
  extra_ms = extra_ms < 2000 ? 2000 : extra_ms > 30000 ? 30000 : extra_ms;
  handshakes (p->h + 1, connections - 1, extra_ms);
  for (size_t i = 1; i < connections; i++)
    if (p->h[i])
      p->h[p->n++] = p->h[i];
  for (size_t i = p->n; i < connections; i++)
    p->h[i] = NULL;
  ep->nconn = p->n;
  return ep;
 fail:
  v2k_endpoint_close (ep);
  return NULL;
}

void
v2k_endpoint_close (struct v2k_endpoint *ep)
{
  if (!ep)
    return;
  if (ep->ops && ep->ops->close)
    ep->ops->close (ep);
  free (ep->name);
  free (ep);
}
