#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"
#include "drain.h"
#include "../util/fsutil.h"

/* A chunk being compared: two reads in flight, one per side. */
struct vslot {
  struct v2k_io io[2];
  char *buf[2];
  bool reading[2];     /* io[k]'s read is in flight (k 0: source, 1: target) */
  int pending;
  int errnum;
  int64_t off;
  size_t len;
  bool busy, ready;
};

struct vengine {
  struct vslot *slots;
  size_t nslots;
};

static void
read_done (struct v2k_io *io, int errnum)
{
  struct vslot *s = io->owner;
  s->reading[io == &s->io[0] ? 0 : 1] = false;
  if (errnum)
    s->errnum = errnum;
  if (--s->pending == 0)
    s->ready = true;
}

/* Whether a read is in flight on side SIDE (0: source, 1: target). */
static bool
waiting (void *opaque, int side)
{
  const struct vengine *e = opaque;
  for (size_t i = 0; i < e->nslots; i++)
    if (e->slots[i].reading[side])
      return true;
  return false;
}

static void
digest (const char *buf, size_t len, unsigned char out[32])
{
  unsigned int n;
  EVP_Digest (buf, len, out, &n, EVP_sha256 (), NULL);
}

static int
next_chunk (int64_t size, size_t chunk, int64_t samples, unsigned *seed, int64_t *pos,
            int64_t *done, int64_t *off, size_t *len)
{
  int64_t nchunks = (size + (int64_t) chunk - 1) / (int64_t) chunk;
  if (samples > 0) {
    if (*done >= samples || *done >= nchunks)
      return 0;
    (*done)++;
    *off = (int64_t) (rand_r (seed) % (unsigned) nchunks) * (int64_t) chunk;
  }
  else {
    if (*pos >= size)
      return 0;
    *off = *pos;
    *pos += (int64_t) chunk;
  }
  *len = (size_t) (size - *off < (int64_t) chunk ? size - *off : (int64_t) chunk);
  return 1;
}

int
v2k_verify (struct v2k_endpoint *src, struct v2k_endpoint *dst, int64_t size, size_t chunk,
            int64_t samples, unsigned seed, volatile sig_atomic_t *stop,
            struct v2k_verify_result *res, struct v2k_error *err)
{
  memset (res, 0, sizeof *res);
  if (chunk > src->max_request)
    chunk = src->max_request;
  if (chunk > dst->max_request)
    chunk = dst->max_request;
  struct vengine e = { .nslots = 8 };
  e.slots = calloc (e.nslots, sizeof *e.slots);
  int rc = -1;
  if (!e.slots) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < e.nslots; i++)
    for (int k = 0; k < 2; k++) {
      e.slots[i].io[k].done = read_done;
      e.slots[i].io[k].owner = &e.slots[i];
      if (!(e.slots[i].buf[k] = malloc (chunk))) {
        v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
        goto out;
      }
    }
  int64_t pos = 0, done = 0;
  bool more = true;
  size_t busy = 0;
  while (more || busy > 0) {
    for (size_t i = 0; i < e.nslots && more; i++) {
      struct vslot *s = &e.slots[i];
      if (s->busy)
        continue;
      if ((stop && *stop) || !next_chunk (size, chunk, samples, &seed, &pos, &done, &s->off, &s->len)) {
        more = false;
        break;
      }
      s->busy = true;
      s->ready = false;
      s->errnum = 0;
      s->pending = 0;
      busy++;
      /* Counted as started: a read that failed to start never completes. */
      s->pending++;
      s->reading[0] = true;
      if (src->ops->read (src, i, s->buf[0], s->len, s->off, &s->io[0]) == -1) {
        s->pending--;
        s->reading[0] = false;
        v2k_error_set (err, V2K_EXIT_TRANSFER, "verify: reading the source at %lld: %s",
                       (long long) s->off, src->last_error);
        goto fail;
      }
      s->pending++;
      s->reading[1] = true;
      if (dst->ops->read (dst, i, s->buf[1], s->len, s->off, &s->io[1]) == -1) {
        s->pending--;
        s->reading[1] = false;
        v2k_error_set (err, V2K_EXIT_TRANSFER, "verify: reading the target at %lld: %s",
                       (long long) s->off, dst->last_error);
        goto fail;
      }
    }
    struct pollfd fds[64];
    size_t ns = src->ops->pollfds (src, fds, 32);
    size_t nd = dst->ops->pollfds (dst, fds + ns, 32);
    if (poll (fds, ns + nd, 1000) < 0 && errno != EINTR) {
      v2k_error_errno (err, V2K_EXIT_TRANSFER, "poll");
      goto fail;
    }
    if (src->ops->dispatch (src, fds, ns) == -1 || dst->ops->dispatch (dst, fds + ns, nd) == -1) {
      v2k_error_set (err, V2K_EXIT_TRANSFER, "verify: %s", src->last_error[0] ? src->last_error : dst->last_error);
      goto fail;
    }
    for (size_t i = 0; i < e.nslots; i++) {
      struct vslot *s = &e.slots[i];
      if (!s->busy || !s->ready)
        continue;
      if (s->errnum) {
        v2k_error_set (err, V2K_EXIT_TRANSFER, "verify: reading %zu bytes at %lld: %s", s->len,
                       (long long) s->off, strerror (s->errnum));
        goto fail;
      }
      unsigned char a[32], b[32];
      digest (s->buf[0], s->len, a);
      digest (s->buf[1], s->len, b);
      if (memcmp (a, b, sizeof a) != 0) {
        res->nmismatch++;
        if (res->nfirst < sizeof res->first / sizeof res->first[0]) {
          /* Narrow the range to the bytes that differ. */
          size_t lo = 0, hi = s->len;
          while (lo < s->len && s->buf[0][lo] == s->buf[1][lo])
            lo++;
          while (hi > lo && s->buf[0][hi - 1] == s->buf[1][hi - 1])
            hi--;
          res->first[res->nfirst++] = (struct v2k_extent) { s->off + (int64_t) lo, (int64_t) (hi - lo) };
        }
      }
      res->bytes_checked += (int64_t) s->len;
      res->chunks++;
      s->busy = false;
      busy--;
    }
  }
  if (stop && *stop) {
    v2k_error_set (err, V2K_EXIT_INTERRUPTED, "verify interrupted");
    goto out;
  }
  rc = 0;
  goto out;
 fail:
  /* The reads still in flight must end before their buffers go; a live
   * server's that do not, by the deadline, outlive the verify. */
  if (!v2k_drain (src, dst, waiting, &e, 30)) {
    for (size_t i = 0; i < e.nslots; i++)
      for (int k = 0; k < 2; k++)
        v2k_buffers_abandon (e.slots[i].buf[k]);
    v2k_buffers_abandon (e.slots);
    e.slots = NULL;
    e.nslots = 0;
  }
 out:
  for (size_t i = 0; i < e.nslots; i++)
    for (int k = 0; k < 2; k++)
      free (e.slots[i].buf[k]);
  free (e.slots);
  return rc;
}
