#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "copy.h"
#include "drain.h"
#include "../util/fsutil.h"

int
v2k_extents_coalesce (v2k_extents *v, int64_t gap)
{
  if (v->len == 0)
    return 0;
  size_t w = 0;
  for (size_t r = 1; r < v->len; r++) {
    struct v2k_extent *last = &v->ptr[w];
    struct v2k_extent cur = v->ptr[r];
    if (cur.start <= last->start + last->length + gap) {
      int64_t end = cur.start + cur.length;
      if (end > last->start + last->length)
        last->length = end - last->start;
    }
    else
      v->ptr[++w] = cur;
  }
  v->len = w + 1;
  return 0;
}

void
v2k_extents_from (v2k_extents *v, int64_t offset)
{
  size_t w = 0;
  for (size_t r = 0; r < v->len; r++) {
    struct v2k_extent e = v->ptr[r];
    if (e.start + e.length <= offset)
      continue;
    if (e.start < offset) {
      e.length -= offset - e.start;
      e.start = offset;
    }
    v->ptr[w++] = e;
  }
  v->len = w;
}

/* A request in flight: its buffer and what it is waiting for. */
enum slot_state { SLOT_FREE, SLOT_READING, SLOT_WRITING, SLOT_READ_DONE, SLOT_WRITE_DONE,
                  SLOT_BACKOFF };

struct slot {
  struct v2k_io io;
  enum slot_state state;
  int errnum;
  int64_t off;
  size_t len;
  int tries;
  bool zero;
  bool known_zero;            /* the source said it reads as zeros: no read */
  char *buf;
  size_t conn;
  double retry_at;            /* SLOT_BACKOFF: when to read again */
};

struct engine {
  struct v2k_endpoint *src, *dst;
  const struct v2k_copy_opts *o;
  struct v2k_copy_stats *st;
  struct slot *slots;
  size_t nslots;
  size_t active;
  const v2k_extents *areas;
  v2k_extents zeros;          /* parts of the areas the source reads as zeros */
  size_t zi;                  /* the first of them not yet behind ext_off */
  size_t ext;                 /* the extent being split into requests */
  int64_t ext_off;            /* next offset within it */
  int64_t done_bytes;
  size_t next_conn;
  /* The completions that dispatch reported, handled after it returns so that
   * no request is started from inside a libnbd callback. */
  struct slot **ready;
  size_t nready;
  struct v2k_io flush_io;
  bool flush_pending;
  int flush_err;
  int64_t flush_checkpoint, flush_bytes;
};

static void
io_done (struct v2k_io *io, int errnum)
{
  struct slot *s = (struct slot *) io;
  struct engine *e = io->owner;
  s->errnum = errnum;
  s->state = s->state == SLOT_READING ? SLOT_READ_DONE : SLOT_WRITE_DONE;
  e->ready[e->nready++] = s;
}

static void
flush_done (struct v2k_io *io, int errnum)
{
  struct engine *e = io->owner;
  e->flush_pending = false;
  e->flush_err = errnum;
  if (!errnum && e->o->checkpoint)
    e->o->checkpoint (e->o->opaque, e->flush_checkpoint, e->flush_bytes);
}

static bool
is_zero (const char *buf, size_t len)
{
  /* Check the first 16 bytes, then compare the buffer with itself shifted:
   * memcmp is vectorised and this needs no second buffer. */
  size_t head = len < 16 ? len : 16;
  for (size_t i = 0; i < head; i++)
    if (buf[i])
      return false;
  return len <= 16 || memcmp (buf, buf + 16, len - 16) == 0;
}

/* A zero request needs no buffer, so it may be larger than a data one. */
#define ZERO_REQUEST_MAX ((int64_t) 64 << 20)

static bool
next_request (struct engine *e, int64_t *off, size_t *len, bool *known_zero)
{
  while (e->ext < e->areas->len) {
    const struct v2k_extent *x = &e->areas->ptr[e->ext];
    if (e->ext_off < x->start)
      e->ext_off = x->start;
    int64_t left = x->start + x->length - e->ext_off;
    if (left <= 0) {
      e->ext++;
      continue;
    }
    while (e->zi < e->zeros.len && e->zeros.ptr[e->zi].start + e->zeros.ptr[e->zi].length <= e->ext_off)
      e->zi++;
    const struct v2k_extent *z = e->zi < e->zeros.len ? &e->zeros.ptr[e->zi] : NULL;
    int64_t n;
    *known_zero = z && z->start <= e->ext_off;
    if (*known_zero)
      n = z->start + z->length - e->ext_off < ZERO_REQUEST_MAX ? z->start + z->length - e->ext_off
        : ZERO_REQUEST_MAX;
    else {
      n = (int64_t) e->o->request_size;
      /* Keep requests aligned to the request size where the extent allows. */
      int64_t to_boundary = n - e->ext_off % n;
      if (n > to_boundary && to_boundary < left)
        n = to_boundary;
      if (z && z->start - e->ext_off < n)
        n = z->start - e->ext_off;  /* stop where the source's zeros begin */
    }
    if (n > left)
      n = left;
    *off = e->ext_off;
    *len = (size_t) n;
    e->ext_off += n;
    return true;
  }
  return false;
}

static int
start_read (struct engine *e, struct slot *s, struct v2k_error *err)
{
  s->state = SLOT_READING;
  s->tries++;
  if (e->src->ops->read (e->src, s->conn, s->buf, s->len, s->off, &s->io) == -1) {
    v2k_error_set (err, V2K_EXIT_TRANSFER, "%s: reading %zu bytes at offset %lld: %s",
                   e->src->name, s->len, (long long) s->off, e->src->last_error);
    return -1;
  }
  return 0;
}

static int
start_write (struct engine *e, struct slot *s, struct v2k_error *err)
{
  s->state = SLOT_WRITING;
  int r = s->zero ? e->dst->ops->zero (e->dst, s->conn, s->len, s->off, &s->io)
    : e->dst->ops->write (e->dst, s->conn, s->buf, s->len, s->off, &s->io);
  if (r == -1) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s: writing %zu bytes at offset %lld: %s",
                   e->dst->name, s->len, (long long) s->off, e->dst->last_error);
    return -1;
  }
  return 0;
}

/* Everything below the returned offset is written: requests start in order,
 * so it is the lowest offset still in flight, or the next to start. */
static int64_t
frontier (const struct engine *e)
{
  int64_t f = e->ext < e->areas->len ? e->ext_off : e->dst->size;
  if (e->ext < e->areas->len && e->ext_off < e->areas->ptr[e->ext].start)
    f = e->areas->ptr[e->ext].start;
  for (size_t i = 0; i < e->nslots; i++)
    if (e->slots[i].state != SLOT_FREE && e->slots[i].off < f)
      f = e->slots[i].off;
  return f;
}

/* Errors that waiting will not cure. */
static bool
permanent (int errnum)
{
  return errnum == ENOSPC || errnum == EDQUOT || errnum == EROFS || errnum == EPERM ||
    errnum == EACCES || errnum == EFBIG || errnum == EINVAL;
}

static int
handle_ready (struct engine *e, struct v2k_error *err)
{
  while (e->nready > 0) {
    struct slot *s = e->ready[--e->nready];
    if (s->errnum) {
      const char *who = s->state == SLOT_READ_DONE ? e->src->name : e->dst->name;
      const char *what = s->state == SLOT_READ_DONE ? "reading" : "writing";
      const char *why = s->state == SLOT_READ_DONE ? e->src->last_error : e->dst->last_error;
      if (s->tries <= e->o->retries && !permanent (s->errnum)) {
        /* Transient failures (a network blip, a busy host) get time to pass:
         * 0.1 s, then 0.2, 0.4, … before the request is read again. */
        e->st->retried++;
        s->state = SLOT_BACKOFF;
        s->retry_at = v2k_monotonic_seconds () + 0.1 * (double) (1 << (s->tries - 1 < 6 ? s->tries - 1 : 6));
        continue;
      }
      v2k_error_set (err, s->state == SLOT_READ_DONE ? V2K_EXIT_TRANSFER : V2K_EXIT_TARGET,
                     "%s: %s %zu bytes at offset %lld failed after %d tries: %s", who, what,
                     s->len, (long long) s->off, s->tries, why[0] ? why : strerror (s->errnum));
      return -1;
    }
    if (s->state == SLOT_READ_DONE) {
      s->zero = is_zero (s->buf, s->len);
      if (s->zero && e->o->target_is_zero) {
        e->st->bytes_skipped += (int64_t) s->len;
        s->state = SLOT_WRITE_DONE;
      }
      else {
        if (start_write (e, s, err) == -1)
          return -1;
        continue;
      }
    }
    /* Written (or nothing to write). */
    if (s->zero)
      e->st->bytes_zeroed += e->o->target_is_zero ? 0 : (int64_t) s->len;
    else
      e->st->bytes_copied += (int64_t) s->len;
    e->done_bytes += (int64_t) s->len;
    s->state = SLOT_FREE;
    e->active--;
  }
  return 0;
}

static int
fill_slots (struct engine *e, struct v2k_error *err)
{
  double t = v2k_monotonic_seconds ();
  bool exhausted = (e->o->stop && *e->o->stop);
  for (size_t i = 0; i < e->nslots; i++) {
    struct slot *s = &e->slots[i];
    if (s->state == SLOT_BACKOFF && t >= s->retry_at) {
      if (s->known_zero)
        s->tries++;
      if ((s->known_zero ? start_write (e, s, err) : start_read (e, s, err)) == -1)
        return -1;
      continue;
    }
    if (s->state != SLOT_FREE || exhausted)
      continue;
    if (!next_request (e, &s->off, &s->len, &s->known_zero)) {
      exhausted = true;
      continue;
    }
    s->tries = 0;
    s->conn = e->next_conn++;
    e->st->requests++;
    e->active++;
    if (s->known_zero) {
      e->st->bytes_unread += (int64_t) s->len;
      s->zero = true;
      s->tries = 1;
      if (e->o->target_is_zero) {
        /* Nothing to do: handle_ready counts it as written. */
        e->st->bytes_skipped += (int64_t) s->len;
        s->state = SLOT_WRITE_DONE;
        s->errnum = 0;
        e->ready[e->nready++] = s;
      }
      else if (start_write (e, s, err) == -1)
        return -1;
      continue;
    }
    if (start_read (e, s, err) == -1)
      return -1;
  }
  return 0;
}

static int
poll_once (struct engine *e, struct v2k_error *err)
{
  struct pollfd fds[64];
  size_t ns = e->src->ops->pollfds (e->src, fds, 32);
  size_t nd = e->dst->ops->pollfds (e->dst, fds + ns, 32);
  /* Requests finished without I/O are waiting in the ready list. */
  int timeout = e->nready > 0 ? 0 : 1000;
  for (size_t i = 0; i < e->nslots; i++)
    if (e->slots[i].state == SLOT_BACKOFF) {
      int ms = (int) ((e->slots[i].retry_at - v2k_monotonic_seconds ()) * 1000) + 1;
      if (ms < timeout)
        timeout = ms < 0 ? 0 : ms;
    }
  int r = poll (fds, ns + nd, timeout);
  if (r < 0) {
    if (errno == EINTR)
      return 0;
    v2k_error_errno (err, V2K_EXIT_TRANSFER, "poll");
    return -1;
  }
  if (e->src->ops->dispatch (e->src, fds, ns) == -1) {
    v2k_error_set (err, V2K_EXIT_TRANSFER, "%s: %s", e->src->name, e->src->last_error);
    return -1;
  }
  if (e->dst->ops->dispatch (e->dst, fds + ns, nd) == -1) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s: %s", e->dst->name, e->dst->last_error);
    return -1;
  }
  return 0;
}

static int
start_flush (struct engine *e, struct v2k_error *err)
{
  e->flush_checkpoint = frontier (e);
  e->flush_bytes = e->done_bytes;
  e->flush_pending = true;
  e->flush_err = 0;
  e->flush_io.done = flush_done;
  e->flush_io.owner = e;
  if (e->dst->ops->flush (e->dst, &e->flush_io) == -1) {
    e->flush_pending = false;
    v2k_error_set (err, V2K_EXIT_TARGET, "%s: flush: %s", e->dst->name, e->dst->last_error);
    return -1;
  }
  return 0;
}

/* What is in flight on side SIDE: reads on the source (0), writes, zeros
 * and the flush on the target (1). */
static bool
waiting (void *opaque, int side)
{
  const struct engine *e = opaque;
  for (size_t i = 0; i < e->nslots; i++)
    if (e->slots[i].state == (side == 0 ? SLOT_READING : SLOT_WRITING))
      return true;
  return side == 1 && e->flush_pending;
}

/* Completions during the drain only mark their slots. */
static bool
drain (struct engine *e)
{
  bool drained = v2k_drain (e->src, e->dst, waiting, e, 30);
  e->nready = 0;
  return drained;
}

int
v2k_copy (struct v2k_endpoint *src, struct v2k_endpoint *dst, const v2k_extents *areas,
          const struct v2k_copy_opts *opts, struct v2k_copy_stats *stats, struct v2k_error *err)
{
  struct v2k_copy_opts o = *opts;
  if (o.request_size == 0)
    o.request_size = 1 << 20;
  if (o.request_size > src->max_request)
    o.request_size = src->max_request;
  if (o.request_size > dst->max_request)
    o.request_size = dst->max_request;
  if (o.max_inflight == 0)
    o.max_inflight = 64 << 20;
  if (o.retries < 0)
    o.retries = 0;
  memset (stats, 0, sizeof *stats);
  for (size_t i = 0; i < areas->len; i++) {
    const struct v2k_extent *x = &areas->ptr[i];
    if (x->start < 0 || x->length <= 0 || x->start + x->length > src->size ||
        x->start + x->length > dst->size || (i > 0 && x->start < areas->ptr[i - 1].start + areas->ptr[i - 1].length)) {
      v2k_error_set (err, V2K_EXIT_TRANSFER,
                     "area %zu [%lld, +%lld) is out of order or outside the disks (source %lld, target %lld bytes)",
                     i, (long long) x->start, (long long) x->length, (long long) src->size,
                     (long long) dst->size);
      return -1;
    }
    stats->bytes_total += x->length;
  }
  struct engine e = { .src = src, .dst = dst, .o = &o, .st = stats, .areas = areas };
  if (o.source_zeros && src->ops->zeros) {
    /* Only an optimisation: if the source cannot say, every byte is read. */
    struct v2k_error ignored = { 0 };
    if (src->ops->zeros (src, areas, &e.zeros, &ignored) != 1)
      e.zeros.len = 0;
  }
  e.nslots = o.max_inflight / o.request_size;
  if (e.nslots < 1)
    e.nslots = 1;
  if (e.nslots > 1024)
    e.nslots = 1024;
  e.slots = calloc (e.nslots, sizeof *e.slots);
  e.ready = calloc (e.nslots, sizeof *e.ready);
  int rc = -1;
  if (!e.slots || !e.ready) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < e.nslots; i++) {
    e.slots[i].io.done = io_done;
    e.slots[i].io.owner = &e;
    /* Page-aligned, so that the file endpoint can write with O_DIRECT. */
    if (posix_memalign ((void **) &e.slots[i].buf, 4096, o.request_size) != 0) {
      e.slots[i].buf = NULL;
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      goto out;
    }
  }
  double t0 = v2k_monotonic_seconds (), last_progress = 0, last_checkpoint = t0;
  for (;;) {
    if (fill_slots (&e, err) == -1)
      goto fail;
    bool more = e.ext < areas->len && !(o.stop && *o.stop);
    if (e.active == 0 && !more && !e.flush_pending)
      break;
    if (poll_once (&e, err) == -1 || handle_ready (&e, err) == -1)
      goto fail;
    if (e.flush_err) {
      v2k_error_set (err, V2K_EXIT_TARGET, "%s: flush failed: %s", dst->name, strerror (e.flush_err));
      goto fail;
    }
    double t = v2k_monotonic_seconds ();
    if (o.progress && t - last_progress >= 0.25) {
      o.progress (o.opaque, e.done_bytes, stats->bytes_total,
                  t > t0 ? (double) e.done_bytes / (t - t0) : 0);
      last_progress = t;
    }
    /* Periodic flushes only while there is copying left: after the last
     * request the final flush below does it, and a flush slower than the
     * interval would otherwise start another for ever. */
    if (o.checkpoint_seconds > 0 && !e.flush_pending && (e.active > 0 || more) &&
        t - last_checkpoint >= o.checkpoint_seconds) {
      if (start_flush (&e, err) == -1)
        goto fail;
      last_checkpoint = t;
    }
  }
  if (o.stop && *o.stop) {
    v2k_error_set (err, V2K_EXIT_INTERRUPTED, "%s: interrupted; re-run to resume", dst->name);
    goto fail;
  }
  /* The final flush: only after it is the data durable. */
  if (start_flush (&e, err) == -1)
    goto fail;
  while (e.flush_pending)
    if (poll_once (&e, err) == -1)
      goto fail;
  if (e.flush_err) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s: flush failed: %s", dst->name, strerror (e.flush_err));
    goto fail;
  }
  stats->seconds = v2k_monotonic_seconds () - t0;
  if (o.progress)
    o.progress (o.opaque, e.done_bytes, stats->bytes_total,
                stats->seconds > 0 ? (double) e.done_bytes / stats->seconds : 0);
  rc = 0;
  goto out;
 fail:
  if (!drain (&e)) {
    /* A live server may still answer into these: they outlive the copy. */
    for (size_t i = 0; i < e.nslots; i++)
      v2k_buffers_abandon (e.slots[i].buf);
    v2k_buffers_abandon (e.slots);
    e.slots = NULL;
  }
 out:
  if (e.slots)
    for (size_t i = 0; i < e.nslots; i++)
      free (e.slots[i].buf);
  free (e.slots);
  free (e.ready);
  free (e.zeros.ptr);
  return rc;
}
