/* verify's engine against scripted endpoints: an early read error must not
 * free buffers that reads still in flight will fill. */
#include <errno.h>
#include <sys/eventfd.h>

#include "test_helpers.h"
#include "../../src/transfer/verify.h"

/* A read the scripted endpoint has taken and not yet completed. */
struct fake_read {
  struct v2k_io *io;
  char *buf;
  size_t len;
  int64_t off;
};

struct fake {
  int efd;                  /* always readable: poll never waits */
  bool fail_first;          /* the read at offset 0 fails with EIO */
  struct fake_read pending[64];
  size_t npending;
  size_t completed;
};

static int
fake_read (struct v2k_endpoint *ep, size_t conn, void *buf, size_t len, int64_t off,
           struct v2k_io *io)
{
  (void) conn;
  struct fake *f = ep->priv;
  assert_true (f->npending < sizeof f->pending / sizeof f->pending[0]);
  f->pending[f->npending++] = (struct fake_read) { io, buf, len, off };
  return 0;
}

static size_t
fake_pollfds (struct v2k_endpoint *ep, struct pollfd *fds, size_t max)
{
  struct fake *f = ep->priv;
  if (max == 0)
    return 0;
  fds[0] = (struct pollfd) { .fd = f->efd, .events = POLLIN };
  return 1;
}

/* Completes one read per call, the failing one first: the others stay in
 * flight while verify handles the error. A completed read fills its
 * buffer, as a server's reply would. */
static int
fake_dispatch (struct v2k_endpoint *ep, const struct pollfd *fds, size_t n)
{
  (void) fds, (void) n;
  struct fake *f = ep->priv;
  if (f->npending == 0)
    return 0;
  size_t k = 0;
  for (size_t i = 0; i < f->npending; i++)
    if (f->fail_first && f->pending[i].off == 0)
      k = i;
  struct fake_read r = f->pending[k];
  f->pending[k] = f->pending[--f->npending];
  int errnum = f->fail_first && r.off == 0 ? EIO : 0;
  if (!errnum)
    memset (r.buf, 0x5a, r.len);
  f->completed++;
  r.io->done (r.io, errnum);
  return 0;
}

static const struct v2k_endpoint_ops fake_ops = {
  .kind = "fake", .read = fake_read, .pollfds = fake_pollfds, .dispatch = fake_dispatch,
  .allocated = v2k_allocated_unknown,
};

static void
fake_init (struct v2k_endpoint *ep, struct fake *f, const char *name, bool fail_first)
{
  memset (f, 0, sizeof *f);
  f->fail_first = fail_first;
  f->efd = eventfd (1, EFD_CLOEXEC);
  assert_true (f->efd >= 0);
  memset (ep, 0, sizeof *ep);
  ep->ops = &fake_ops;
  ep->name = (char *) name;
  ep->size = 64 << 20;
  ep->nconn = 1;
  ep->max_request = 4 << 20;
  ep->priv = f;
}

static void
test_error_drains_reads_in_flight (void **state)
{
  (void) state;
  struct v2k_endpoint src, dst;
  struct fake fs, fd;
  fake_init (&src, &fs, "source", true);
  fake_init (&dst, &fd, "target", false);
  struct v2k_verify_result res;
  struct v2k_error err = { 0 };
  assert_int_equal (v2k_verify (&src, &dst, src.size, 4 << 20, 0, 1, NULL, &res, &err), -1);
  assert_int_equal (err.code, V2K_EXIT_TRANSFER);
  assert_non_null (strstr (err.message, "at 0"));
  /* Every read verify started was completed before it returned: none is
   * left to write into a freed buffer. */
  assert_int_equal (fs.npending, 0);
  assert_int_equal (fd.npending, 0);
  assert_true (fs.completed >= 2 && fd.completed >= 2);
  close (fs.efd);
  close (fd.efd);
}

static void
test_clean_compare (void **state)
{
  (void) state;
  struct v2k_endpoint src, dst;
  struct fake fs, fd;
  fake_init (&src, &fs, "source", false);
  fake_init (&dst, &fd, "target", false);
  struct v2k_verify_result res;
  struct v2k_error err = { 0 };
  assert_int_equal (v2k_verify (&src, &dst, src.size, 4 << 20, 0, 1, NULL, &res, &err), 0);
  assert_int_equal (res.bytes_checked, src.size);
  assert_int_equal (res.nmismatch, 0);
  assert_int_equal (fs.npending + fd.npending, 0);
  close (fs.efd);
  close (fd.efd);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_error_drains_reads_in_flight),
    cmocka_unit_test (test_clean_compare),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
