/* The copy engine, the extent helpers and verify, against in-memory
 * endpoints: every byte inside the areas ends equal to the source, nothing
 * outside them is touched, zeros are written to a target that holds data
 * and skipped only on one known to read zeros, every checkpoint covers only
 * flushed data, write and flush errors fail the copy, and verify finds and
 * narrows each difference. The fake endpoints complete requests in reverse
 * order (last submitted first), so the engine never gets in-order luck.
 * tests/mutate (make mutate) relies on these checks. */
#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include "test_helpers.h"

#include "transfer/copy.h"
#include "transfer/verify.h"

enum { OP_READ, OP_WRITE, OP_ZERO, OP_FLUSH };

struct op {
  int kind;
  int64_t off;
  size_t len;
  void *buf;
  struct v2k_io *io;
};

struct logged { int kind; int64_t off; size_t len; };

struct fake {
  struct v2k_endpoint ep;
  unsigned char *data;        /* what completed writes made of it */
  unsigned char *durable;     /* what the last completed flush covers */
  unsigned char *at_flush;    /* the data when the pending flush was sent */
  int efd;
  struct op q[4096];
  size_t nq;
  struct logged log[8192];    /* completed reads, writes and zeros */
  size_t nlog;
  size_t flushes;
  /* Faults: ops of FAIL_KIND that cover FAIL_OFF fail FAIL_LEFT times. */
  int fail_kind;
  int64_t fail_off;
  int fail_left;
  int fail_errno;
  bool fail_flush;
  /* Flushes complete at once, inside the flush call: a checkpoint on every
   * turn of the engine's loop. */
  bool inline_flush;
  /* Block status: the parts of any areas inside PROMISED read as zeros. */
  bool answers_zeros;
  v2k_extents promised;
};

static struct fake *
priv (struct v2k_endpoint *ep)
{
  return (struct fake *) ep;
}

static int
enqueue (struct fake *f, int kind, int64_t off, size_t len, void *buf, struct v2k_io *io)
{
  if (kind != OP_FLUSH && (off < 0 || off + (int64_t) len > f->ep.size)) {
    snprintf (f->ep.last_error, sizeof f->ep.last_error, "request [%lld, +%zu) past the end",
              (long long) off, len);
    return -1;
  }
  assert_true (f->nq < sizeof f->q / sizeof f->q[0]);
  f->q[f->nq++] = (struct op) { kind, off, len, buf, io };
  uint64_t one = 1;
  assert_int_equal (write (f->efd, &one, sizeof one), sizeof one);
  return 0;
}

static int
f_read (struct v2k_endpoint *ep, size_t conn, void *buf, size_t len, int64_t off, struct v2k_io *io)
{
  (void) conn;
  return enqueue (priv (ep), OP_READ, off, len, buf, io);
}

static int
f_write (struct v2k_endpoint *ep, size_t conn, const void *buf, size_t len, int64_t off,
         struct v2k_io *io)
{
  (void) conn;
  return enqueue (priv (ep), OP_WRITE, off, len, (void *) buf, io);
}

static int
f_zero (struct v2k_endpoint *ep, size_t conn, size_t len, int64_t off, struct v2k_io *io)
{
  (void) conn;
  return enqueue (priv (ep), OP_ZERO, off, len, NULL, io);
}

static int
f_flush (struct v2k_endpoint *ep, struct v2k_io *io)
{
  struct fake *f = priv (ep);
  memcpy (f->at_flush, f->data, (size_t) f->ep.size);
  if (f->inline_flush) {
    f->flushes++;
    memcpy (f->durable, f->at_flush, (size_t) f->ep.size);
    io->done (io, 0);
    return 0;
  }
  return enqueue (f, OP_FLUSH, 0, 0, NULL, io);
}

static size_t
f_pollfds (struct v2k_endpoint *ep, struct pollfd *fds, size_t max)
{
  if (max == 0)
    return 0;
  fds[0] = (struct pollfd) { .fd = priv (ep)->efd, .events = POLLIN };
  return 1;
}

static int
f_dispatch (struct v2k_endpoint *ep, const struct pollfd *fds, size_t n)
{
  struct fake *f = priv (ep);
  (void) fds, (void) n;
  uint64_t v;
  if (read (f->efd, &v, sizeof v) < 0 && errno != EAGAIN)
    return -1;
  struct op ops[4096];
  size_t nops = f->nq;
  memcpy (ops, f->q, nops * sizeof ops[0]);
  f->nq = 0;
  for (size_t k = nops; k-- > 0; ) {       /* the last submitted first */
    struct op *o = &ops[k];
    int e = 0;
    if (o->kind == f->fail_kind && f->fail_left > 0 && o->off <= f->fail_off &&
        f->fail_off < o->off + (int64_t) o->len) {
      f->fail_left--;
      e = f->fail_errno;
    }
    switch (o->kind) {
    case OP_READ:
      if (!e)
        memcpy (o->buf, f->data + o->off, o->len);
      break;
    case OP_WRITE:
      if (!e)
        memcpy (f->data + o->off, o->buf, o->len);
      break;
    case OP_ZERO:
      if (!e)
        memset (f->data + o->off, 0, o->len);
      break;
    case OP_FLUSH:
      f->flushes++;
      if (f->fail_flush)
        e = EIO;
      else
        memcpy (f->durable, f->at_flush, (size_t) f->ep.size);
      break;
    }
    if (e)
      snprintf (f->ep.last_error, sizeof f->ep.last_error, "%s", strerror (e));
    else if (o->kind != OP_FLUSH && f->nlog < sizeof f->log / sizeof f->log[0])
      f->log[f->nlog++] = (struct logged) { o->kind, o->off, o->len };
    o->io->done (o->io, e);
  }
  return 0;
}

static int
f_zeros (struct v2k_endpoint *ep, const v2k_extents *areas, v2k_extents *out, struct v2k_error *err)
{
  struct fake *f = priv (ep);
  (void) err;
  if (!f->answers_zeros)
    return 0;
  for (size_t i = 0; i < areas->len; i++)
    for (size_t k = 0; k < f->promised.len; k++) {
      int64_t s = areas->ptr[i].start > f->promised.ptr[k].start ? areas->ptr[i].start : f->promised.ptr[k].start;
      int64_t ae = areas->ptr[i].start + areas->ptr[i].length;
      int64_t pe = f->promised.ptr[k].start + f->promised.ptr[k].length;
      int64_t e = ae < pe ? ae : pe;
      if (s < e)
        assert_int_equal (v2k_extents_add (out, s, e - s), 0);
    }
  return 1;
}

static const struct v2k_endpoint_ops fake_ops = {
  .kind = "fake", .read = f_read, .write = f_write, .zero = f_zero, .flush = f_flush,
  .pollfds = f_pollfds, .dispatch = f_dispatch, .allocated = v2k_allocated_unknown,
  .zeros = f_zeros,
};

static struct fake *
fake_new (int64_t size, int fill)
{
  struct fake *f = calloc (1, sizeof *f);
  assert_non_null (f);
  f->ep.ops = &fake_ops;
  f->ep.name = (char *) "fake";
  f->ep.size = size;
  f->ep.nconn = 1;
  f->ep.max_request = 1 << 20;
  f->data = malloc ((size_t) size);
  f->durable = malloc ((size_t) size);
  f->at_flush = malloc ((size_t) size);
  assert_true (f->data && f->durable && f->at_flush);
  memset (f->data, fill, (size_t) size);
  memcpy (f->durable, f->data, (size_t) size);
  f->efd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  assert_true (f->efd >= 0);
  f->fail_kind = -1;
  return f;
}

static void
fake_free (struct fake *f)
{
  close (f->efd);
  free (f->data);
  free (f->durable);
  free (f->at_flush);
  v2k_extents_reset (&f->promised);
  free (f);
}

/* Deterministic non-zero bytes. */
static void
pattern (unsigned char *p, int64_t off, int64_t len, unsigned seed)
{
  uint32_t x = seed * 2654435761u + 1;
  for (int64_t i = 0; i < len; i++) {
    x = x * 1103515245u + 12345u;
    p[off + i] = (unsigned char) (1 + (x >> 16) % 255);
  }
}

static bool
in_areas (const v2k_extents *a, int64_t off)
{
  for (size_t i = 0; i < a->len; i++)
    if (off >= a->ptr[i].start && off < a->ptr[i].start + a->ptr[i].length)
      return true;
  return false;
}

static void
first_difference (const unsigned char *a, const unsigned char *b, int64_t off, int64_t len,
                  const char *what)
{
  for (int64_t i = off; i < off + len; i++)
    if (a[i] != b[i])
      fail_msg ("byte %lld is %d, want %d (%s)", (long long) i, a[i], b[i], what);
}

static void
all_fill (const unsigned char *p, int64_t off, int64_t len, int fill)
{
  for (int64_t i = off; i < off + len; i++)
    if (p[i] != fill)
      fail_msg ("byte %lld outside the areas is %d, want %d", (long long) i, p[i], fill);
}

/* DST's bytes equal SRC's inside AREAS (sorted, apart) and FILL outside them. */
static void
assert_copied (const struct fake *src, const unsigned char *dst, const v2k_extents *areas, int fill)
{
  int64_t pos = 0;
  for (size_t i = 0; i < areas->len; i++) {
    const struct v2k_extent *x = &areas->ptr[i];
    all_fill (dst, pos, x->start - pos, fill);
    if (memcmp (dst + x->start, src->data + x->start, (size_t) x->length) != 0)
      first_difference (dst, src->data, x->start, x->length, "inside the areas");
    pos = x->start + x->length;
  }
  all_fill (dst, pos, src->ep.size - pos, fill);
}

static void
areas_of (v2k_extents *v, const int64_t (*list)[2], size_t n)
{
  for (size_t i = 0; i < n; i++)
    assert_int_equal (v2k_extents_append (v, (struct v2k_extent) { list[i][0], list[i][1] }), 0);
}

#define K 1024
#define M (1024 * 1024)

/* ------------------------------------------------------------ extents */

static void
test_extents_add (void **state)
{
  (void) state;
  v2k_extents v = empty_vector;
  v2k_extents_add (&v, 0, 10);
  v2k_extents_add (&v, 10, 5);     /* touches: merged */
  v2k_extents_add (&v, 20, 5);     /* apart: a new one */
  v2k_extents_add (&v, 25, 7);
  assert_int_equal (v.len, 2);
  assert_int_equal (v.ptr[0].start, 0);
  assert_int_equal (v.ptr[0].length, 15);
  assert_int_equal (v.ptr[1].start, 20);
  assert_int_equal (v.ptr[1].length, 12);
  assert_int_equal (v2k_extents_bytes (&v), 27);
  v2k_extents_reset (&v);
}

static void
test_extents_coalesce (void **state)
{
  (void) state;
  v2k_extents v = empty_vector;
  static const int64_t a[][2] = { { 0, 4096 }, { 8192, 4096 }, { 100000, 10 }, { 100010, 6 } };
  areas_of (&v, a, 4);
  v2k_extents_coalesce (&v, 4096);
  assert_int_equal (v.len, 2);
  assert_int_equal (v.ptr[0].start, 0);
  assert_int_equal (v.ptr[0].length, 12288);   /* the gap is copied too */
  assert_int_equal (v.ptr[1].start, 100000);
  assert_int_equal (v.ptr[1].length, 16);
  v2k_extents_reset (&v);
  /* A gap one byte wider than allowed stays. */
  static const int64_t b[][2] = { { 0, 4096 }, { 8193, 4096 } };
  areas_of (&v, b, 2);
  v2k_extents_coalesce (&v, 4096);
  assert_int_equal (v.len, 2);
  v2k_extents_reset (&v);
  /* An extent inside the previous one does not shorten it. */
  static const int64_t c[][2] = { { 0, 100 }, { 10, 20 }, { 200, 5 } };
  areas_of (&v, c, 3);
  v2k_extents_coalesce (&v, 0);
  assert_int_equal (v.len, 2);
  assert_int_equal (v.ptr[0].length, 100);
  assert_int_equal (v.ptr[1].start, 200);
  assert_int_equal (v.ptr[1].length, 5);
  v2k_extents_reset (&v);
}

static void
test_extents_from (void **state)
{
  (void) state;
  static const int64_t a[][2] = { { 0, 100 }, { 200, 100 }, { 400, 100 } };
  v2k_extents v = empty_vector;
  areas_of (&v, a, 3);
  v2k_extents_from (&v, 250);      /* clips the straddling one */
  assert_int_equal (v.len, 2);
  assert_int_equal (v.ptr[0].start, 250);
  assert_int_equal (v.ptr[0].length, 50);
  assert_int_equal (v.ptr[1].start, 400);
  assert_int_equal (v.ptr[1].length, 100);
  v2k_extents_from (&v, 300);      /* one ending exactly there goes */
  assert_int_equal (v.len, 1);
  assert_int_equal (v.ptr[0].start, 400);
  v2k_extents_from (&v, 0);
  assert_int_equal (v.len, 1);
  assert_int_equal (v.ptr[0].length, 100);
  v2k_extents_from (&v, 1000);
  assert_int_equal (v.len, 0);
  v2k_extents_reset (&v);
}

/* ------------------------------------------------------------ the engine */

struct ckpt {
  struct fake *src, *dst;
  const v2k_extents *areas;
  int fill;
  int n;
  int64_t last;
};

/* Each checkpoint must be covered by the flushed data alone. */
static void
on_checkpoint (void *opaque, int64_t offset, int64_t bytes_done)
{
  struct ckpt *c = opaque;
  (void) bytes_done;
  assert_true (offset >= c->last);
  assert_true (offset <= c->dst->ep.size);
  for (size_t i = 0; i < c->areas->len; i++) {
    const struct v2k_extent *x = &c->areas->ptr[i];
    int64_t end = x->start + x->length < offset ? x->start + x->length : offset;
    if (x->start < end && memcmp (c->dst->durable + x->start, c->src->data + x->start,
                                  (size_t) (end - x->start)) != 0)
      fail_msg ("checkpoint %lld (#%d) covers data in [%lld, %lld) that was not flushed",
                (long long) offset, c->n + 1, (long long) x->start, (long long) end);
  }
  c->last = offset;
  c->n++;
}

/* A source of SIZE with data and runs of zeros (ZEROS). */
static struct fake *
make_source (int64_t size, const int64_t (*zeros)[2], size_t nz)
{
  struct fake *s = fake_new (size, 0);
  pattern (s->data, 0, size, 7);
  for (size_t i = 0; i < nz; i++)
    memset (s->data + zeros[i][0], 0, (size_t) zeros[i][1]);
  return s;
}

static const int64_t zero_runs[][2] = {
  { 128 * K, 128 * K },                        /* two whole requests of zeros */
  { 256 * K, 64 * K }, { 320 * K, 64 * K }, { 384 * K, 64 * K }, { 448 * K, 64 * K },
  { 2 * M, 512 * K },
};

/* 4 MiB: data, zeros, and four 64 KiB requests that are zeros but for their
 * last byte, byte 16, or every 16th byte (from byte 15, from byte 0). */
static struct fake *
standard_source (void)
{
  struct fake *s = make_source (4 * M, zero_runs, sizeof zero_runs / sizeof zero_runs[0]);
  s->data[256 * K + 64 * K - 1] = 1;   /* the last byte of a request */
  s->data[320 * K + 16] = 2;           /* byte 16 */
  for (int64_t i = 15; i < 64 * K; i += 16)
    s->data[384 * K + i] = 3;          /* every 16th byte from byte 15 */
  for (int64_t i = 0; i < 64 * K; i += 16)
    s->data[448 * K + i] = 4;          /* every 16th byte from byte 0 */
  return s;
}

static const int64_t std_areas[][2] = {
  { 1000, 300000 }, { 400000, 65536 }, { 1 * M + 4096, 2 * M + 123 }, { 4 * M - 4096, 4096 },
};

static struct v2k_copy_opts
opts (size_t req, size_t inflight)
{
  return (struct v2k_copy_opts) { .request_size = req, .max_inflight = inflight, .retries = 2 };
}

static void
test_copy_existing_target (void **state)
{
  (void) state;
  struct fake *s = standard_source (), *d = fake_new (4 * M, 0xEE);
  v2k_extents a = empty_vector;
  areas_of (&a, std_areas, 4);
  struct v2k_copy_opts o = opts (64 * K, 256 * K);
  struct v2k_copy_stats st;
  struct v2k_error err = { 0 };
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), 0);
  assert_copied (s, d->data, &a, 0xEE);
  assert_copied (s, d->durable, &a, 0xEE);     /* the final flush covers it all */
  assert_int_equal (st.bytes_total, v2k_extents_bytes (&a));
  assert_int_equal (st.bytes_copied + st.bytes_zeroed, st.bytes_total);
  assert_int_equal (st.bytes_skipped, 0);
  assert_true (st.bytes_zeroed > 0);
  /* Data requests never cross a request-size boundary, nor leave an area. */
  for (size_t i = 0; i < d->nlog; i++) {
    const struct logged *l = &d->log[i];
    assert_true (in_areas (&a, l->off) && in_areas (&a, l->off + (int64_t) l->len - 1));
    if (l->kind == OP_WRITE)
      assert_int_equal (l->off / (64 * K), (l->off + (int64_t) l->len - 1) / (64 * K));
  }
  v2k_extents_reset (&a);
  fake_free (s);
  fake_free (d);
}

static void
test_copy_fresh_target (void **state)
{
  (void) state;
  struct fake *s = standard_source (), *d = fake_new (4 * M, 0);
  v2k_extents a = empty_vector;
  static const int64_t whole[][2] = { { 0, 4 * M } };
  areas_of (&a, whole, 1);
  struct v2k_copy_opts o = opts (64 * K, 256 * K);
  o.target_is_zero = true;
  struct v2k_copy_stats st;
  struct v2k_error err = { 0 };
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), 0);
  assert_copied (s, d->data, &a, 0);
  /* The zero requests (128K..256K and 2M..2.5M) need no operation at all. */
  assert_int_equal (st.bytes_skipped, 128 * K + 512 * K);
  assert_int_equal (st.bytes_zeroed, 0);
  assert_int_equal (st.bytes_copied, 4 * M - st.bytes_skipped);
  for (size_t i = 0; i < d->nlog; i++)
    assert_int_not_equal (d->log[i].kind, OP_ZERO);
  v2k_extents_reset (&a);
  fake_free (s);
  fake_free (d);
}

/* Zeros the source promises: zeroed without a read on a target with data,
 * nothing at all on a target known to read zeros. */
static void
test_copy_source_zeros (void **state)
{
  (void) state;
  for (int fresh = 0; fresh <= 1; fresh++) {
    struct fake *s = standard_source (), *d = fake_new (4 * M, fresh ? 0 : 0xEE);
    s->answers_zeros = true;
    /* Not aligned to the requests: a data request must stop where it starts. */
    v2k_extents_add (&s->promised, 2 * M + 4096, 512 * K - 4096);
    v2k_extents a = empty_vector;
    areas_of (&a, std_areas, 4);
    struct v2k_copy_opts o = opts (64 * K, 256 * K);
    o.source_zeros = true;
    o.target_is_zero = fresh;
    struct v2k_copy_stats st;
    struct v2k_error err = { 0 };
    assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), 0);
    assert_copied (s, d->data, &a, fresh ? 0 : 0xEE);
    assert_int_equal (st.bytes_unread, 512 * K - 4096);
    for (size_t i = 0; i < s->nlog; i++)         /* no read of a promised zero */
      if (s->log[i].off + (int64_t) s->log[i].len > 2 * M + 4096 && s->log[i].off < 2 * M + 512 * K)
        fail_msg ("read [%lld, +%zu) of zeros the source promised", (long long) s->log[i].off, s->log[i].len);
    if (fresh)
      assert_true (st.bytes_skipped >= 512 * K - 4096);
    else
      assert_true (st.bytes_zeroed >= 512 * K - 4096);
    v2k_extents_reset (&a);
    fake_free (s);
    fake_free (d);
  }
}

static void
test_copy_checkpoints (void **state)
{
  (void) state;
  struct fake *s = standard_source (), *d = fake_new (4 * M, 0xEE);
  v2k_extents a = empty_vector;
  areas_of (&a, std_areas, 4);
  struct ckpt c = { .src = s, .dst = d, .areas = &a, .fill = 0xEE };
  d->inline_flush = true;
  struct v2k_copy_opts o = opts (16 * K, 128 * K);
  o.checkpoint_seconds = 1e-9;          /* a flush on every turn */
  o.checkpoint = on_checkpoint;
  o.opaque = &c;
  struct v2k_copy_stats st;
  struct v2k_error err = { 0 };
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), 0);
  assert_true (c.n >= 5);
  assert_copied (s, d->durable, &a, 0xEE);
  /* The last checkpoint covers the whole disk. */
  assert_int_equal (c.last, 4 * M);
  v2k_extents_reset (&a);
  fake_free (s);
  fake_free (d);
}

/* Flushes that complete later than the checkpoint interval: the copy must
 * still end (it used to start a new periodic flush after every completed one
 * once nothing was left to copy, for ever). alarm() turns a hang into a
 * failure. */
static void
test_copy_slow_flushes_end (void **state)
{
  (void) state;
  struct fake *s = standard_source (), *d = fake_new (4 * M, 0xEE);
  v2k_extents a = empty_vector;
  areas_of (&a, std_areas, 4);
  struct v2k_copy_opts o = opts (16 * K, 128 * K);
  o.checkpoint_seconds = 1e-9;
  struct v2k_copy_stats st;
  struct v2k_error err = { 0 };
  alarm (20);
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), 0);
  alarm (0);
  assert_copied (s, d->durable, &a, 0xEE);
  v2k_extents_reset (&a);
  fake_free (s);
  fake_free (d);
}

static void
test_copy_errors (void **state)
{
  (void) state;
  v2k_extents a = empty_vector;
  areas_of (&a, std_areas, 4);
  struct v2k_copy_stats st;
  struct v2k_error err = { 0 };
  struct v2k_copy_opts o = opts (64 * K, 256 * K);
  /* A write that fails for good fails the copy, naming the offset. */
  struct fake *s = standard_source (), *d = fake_new (4 * M, 0xEE);
  d->fail_kind = OP_WRITE;
  d->fail_off = 1 * M + 100 * K;
  d->fail_left = 1000;
  d->fail_errno = ENOSPC;
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), -1);
  assert_int_equal (err.code, V2K_EXIT_TARGET);
  assert_non_null (strstr (err.message, "at offset 1114112"));
  fake_free (d);
  /* A write that fails once is repeated. */
  d = fake_new (4 * M, 0xEE);
  d->fail_kind = OP_WRITE;
  d->fail_off = 1 * M + 100 * K;
  d->fail_left = 1;
  d->fail_errno = EIO;
  memset (&err, 0, sizeof err);
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), 0);
  assert_int_equal (st.retried, 1);
  assert_copied (s, d->data, &a, 0xEE);
  fake_free (d);
  /* A read that fails twice is read a third time (retries 2)... */
  d = fake_new (4 * M, 0xEE);
  s->fail_kind = OP_READ;
  s->fail_off = 3 * M;
  s->fail_left = 2;
  s->fail_errno = EIO;
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), 0);
  assert_int_equal (st.retried, 2);
  assert_copied (s, d->data, &a, 0xEE);
  fake_free (d);
  /* ... but not a fourth time. */
  d = fake_new (4 * M, 0xEE);
  s->fail_left = 3;
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), -1);
  assert_int_equal (err.code, V2K_EXIT_TRANSFER);
  assert_non_null (strstr (err.message, "failed after 3 tries"));
  fake_free (d);
  s->fail_left = 0;
  /* A failed flush fails the copy, and reports no checkpoint. */
  d = fake_new (4 * M, 0xEE);
  d->fail_flush = true;
  struct ckpt c = { .src = s, .dst = d, .areas = &a };
  o.checkpoint_seconds = 1e-9;
  o.checkpoint = on_checkpoint;
  o.opaque = &c;
  memset (&err, 0, sizeof err);
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), -1);
  assert_int_equal (err.code, V2K_EXIT_TARGET);
  assert_non_null (strstr (err.message, "flush"));
  assert_int_equal (c.n, 0);
  fake_free (d);
  /* The same with only the final flush. */
  d = fake_new (4 * M, 0xEE);
  d->fail_flush = true;
  o.checkpoint_seconds = 0;
  assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), -1);
  assert_non_null (strstr (err.message, "flush"));
  assert_int_equal (d->flushes, 1);
  fake_free (d);
  fake_free (s);
  v2k_extents_reset (&a);
}

static void
test_copy_bad_areas (void **state)
{
  (void) state;
  struct fake *s = fake_new (1 * M, 1), *d = fake_new (512 * K, 0xEE);
  struct v2k_copy_opts o = opts (64 * K, 256 * K);
  struct v2k_copy_stats st;
  struct v2k_error err = { 0 };
  static const int64_t cases[][2][2] = {
    { { 0, 4096 }, { 2048, 4096 } },       /* overlap */
    { { 8192, 4096 }, { 0, 4096 } },       /* out of order */
    { { 0, 4096 }, { 512 * K, 4096 } },    /* past the target */
    { { 0, 4096 }, { 4096, 0 } },          /* empty */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    v2k_extents a = empty_vector;
    areas_of (&a, cases[i], 2);
    assert_int_equal (v2k_copy (&s->ep, &d->ep, &a, &o, &st, &err), -1);
    assert_int_equal (err.code, V2K_EXIT_TRANSFER);
    assert_int_equal (d->nlog, 0);
    v2k_extents_reset (&a);
  }
  fake_free (s);
  fake_free (d);
}

/* ------------------------------------------------------------ verify */

static void
test_verify (void **state)
{
  (void) state;
  const int64_t size = 1 * M + 4096;
  struct fake *s = fake_new (size, 0), *d = fake_new (size, 0);
  pattern (s->data, 0, size, 3);
  memcpy (d->data, s->data, (size_t) size);
  struct v2k_verify_result r;
  struct v2k_error err = { 0 };
  assert_int_equal (v2k_verify (&s->ep, &d->ep, size, 256 * K, 0, 1, NULL, &r, &err), 0);
  assert_int_equal (r.nmismatch, 0);
  assert_int_equal (r.bytes_checked, size);
  assert_int_equal (r.chunks, 5);
  /* Two bytes apart in the second chunk, one in the last (short) chunk. */
  d->data[300 * K] ^= 0x40;
  d->data[300 * K + 2] ^= 0x01;
  d->data[size - 1] ^= 0x80;
  assert_int_equal (v2k_verify (&s->ep, &d->ep, size, 256 * K, 0, 1, NULL, &r, &err), 0);
  assert_int_equal (r.nmismatch, 2);
  assert_int_equal (r.nfirst, 2);
  struct v2k_extent got[2] = { r.first[0], r.first[1] };
  if (got[0].start > got[1].start) {
    got[0] = r.first[1];
    got[1] = r.first[0];
  }
  assert_int_equal (got[0].start, 300 * K);
  assert_int_equal (got[0].length, 3);
  assert_int_equal (got[1].start, size - 1);
  assert_int_equal (got[1].length, 1);
  /* The first byte of the disk. */
  memcpy (d->data, s->data, (size_t) size);
  d->data[0] ^= 1;
  assert_int_equal (v2k_verify (&s->ep, &d->ep, size, 256 * K, 0, 1, NULL, &r, &err), 0);
  assert_int_equal (r.nmismatch, 1);
  assert_int_equal (r.first[0].start, 0);
  assert_int_equal (r.first[0].length, 1);
  /* Samples: exactly that many chunks, each compared. */
  for (int64_t i = 0; i < size; i += 4096)
    d->data[i] ^= 1;
  assert_int_equal (v2k_verify (&s->ep, &d->ep, size, 256 * K, 3, 42, NULL, &r, &err), 0);
  assert_int_equal (r.chunks, 3);
  assert_int_equal (r.nmismatch, 3);
  /* A target that cannot be read is an error, not a pass. */
  memcpy (d->data, s->data, (size_t) size);
  d->fail_kind = OP_READ;
  d->fail_off = 600 * K;
  d->fail_left = 1;
  d->fail_errno = EIO;
  assert_int_equal (v2k_verify (&s->ep, &d->ep, size, 256 * K, 0, 1, NULL, &r, &err), -1);
  assert_int_equal (err.code, V2K_EXIT_TRANSFER);
  fake_free (s);
  fake_free (d);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_extents_add),
    cmocka_unit_test (test_extents_coalesce),
    cmocka_unit_test (test_extents_from),
    cmocka_unit_test (test_copy_existing_target),
    cmocka_unit_test (test_copy_fresh_target),
    cmocka_unit_test (test_copy_source_zeros),
    cmocka_unit_test (test_copy_checkpoints),
    cmocka_unit_test (test_copy_slow_flushes_end),
    cmocka_unit_test (test_copy_errors),
    cmocka_unit_test (test_copy_bad_areas),
    cmocka_unit_test (test_verify),
  };
  return cmocka_run_group_tests_name ("engine", tests, NULL, NULL);
}
