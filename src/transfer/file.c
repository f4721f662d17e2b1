/* The file endpoint: a raw file or block device written with pwrite, with no
 * server in between (as nbdcopy's file-ops). A few worker threads do the
 * blocking calls, with O_DIRECT where the request is aligned, so that writes
 * overlap as they do in qemu-nbd's native AIO; like the RBD endpoint's, their
 * results reach the engine's thread through completions.c. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "completions.h"
#include "file.h"

#define FILE_THREADS 4
#define DIRECT_ALIGN 4096
#define ZERO_BUF (1u << 20)

enum op_kind { OP_READ, OP_WRITE, OP_ZERO, OP_FLUSH };

struct op {
  struct v2k_completion c;  /* first: running the completion frees the op */
  struct op *next;          /* in the work queue */
  enum op_kind kind;
  void *buf;
  size_t len;
  int64_t off;
};

struct file_priv {
  struct v2k_completions done;   /* first: the generic pollfds and dispatch */
  int fd;                   /* buffered */
  int dfd;                  /* O_DIRECT, or -1 where the filesystem lacks it */
  bool block;
  int punch;                /* punching holes works here; cleared on EOPNOTSUPP */
  char *zeros;
  pthread_mutex_t lock;     /* guards the work queue */
  pthread_cond_t work;
  struct op *queue, *queue_tail;    /* requests not yet taken by a worker */
  bool stopping;
  pthread_t threads[FILE_THREADS];
  size_t nthreads;
};

static int
write_all (int fd, const char *b, size_t len, int64_t off)
{
  while (len > 0) {
    ssize_t r = pwrite (fd, b, len, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return errno;
    if (r == 0)
      return EIO;
    b += r;
    len -= (size_t) r;
    off += r;
  }
  return 0;
}

static int
read_all (int fd, char *b, size_t len, int64_t off)
{
  while (len > 0) {
    ssize_t r = pread (fd, b, len, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return errno;
    if (r == 0)
      return EIO;  /* past the end */
    b += r;
    len -= (size_t) r;
    off += r;
  }
  return 0;
}

static bool
aligned (const struct op *o)
{
  return (uintptr_t) o->buf % DIRECT_ALIGN == 0 && o->len % DIRECT_ALIGN == 0 &&
    o->off % DIRECT_ALIGN == 0;
}

/* Zeros without punching: BLKZEROOUT on a device, else written zeros. */
static int
zero_fill (struct file_priv *p, size_t len, int64_t off)
{
  if (p->block && off % 512 == 0 && len % 512 == 0) {
    uint64_t range[2] = { (uint64_t) off, len };
    if (ioctl (p->fd, BLKZEROOUT, range) == 0)
      return 0;
  }
  while (len > 0) {
    size_t n = len < ZERO_BUF ? len : ZERO_BUF;
    int e = write_all (p->fd, p->zeros, n, off);
    if (e)
      return e;
    len -= n;
    off += (int64_t) n;
  }
  return 0;
}

static void
perform (struct file_priv *p, struct op *o)
{
  switch (o->kind) {
  case OP_READ:
    o->c.what = "pread";
    o->c.errnum = read_all (p->fd, o->buf, o->len, o->off);
    break;
  case OP_WRITE:
    o->c.what = "pwrite";
    o->c.errnum = write_all (p->dfd >= 0 && aligned (o) ? p->dfd : p->fd, o->buf, o->len, o->off);
    break;
  case OP_ZERO:
    /* A punched hole reads back as zeros and keeps a file sparse. */
    o->c.what = "punching a hole";
    if (__atomic_load_n (&p->punch, __ATOMIC_RELAXED)) {
      if (fallocate (p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, o->off, (off_t) o->len) == 0) {
        o->c.errnum = 0;
        break;
      }
      o->c.errnum = errno;
      if (o->c.errnum != EOPNOTSUPP && o->c.errnum != ENOSYS)
        break;
      __atomic_store_n (&p->punch, 0, __ATOMIC_RELAXED);
    }
    o->c.what = "writing zeros";
    o->c.errnum = zero_fill (p, o->len, o->off);
    break;
  case OP_FLUSH:
    /* Covers every write that returned before it: buffered ones, and the
     * device cache and allocation metadata of direct ones. */
    o->c.what = "fdatasync";
    o->c.errnum = fdatasync (p->fd) == 0 ? 0 : errno;
    break;
  }
}

static void *
worker (void *arg)
{
  struct file_priv *p = arg;
  pthread_mutex_lock (&p->lock);
  for (;;) {
    while (!p->queue && !p->stopping)
      pthread_cond_wait (&p->work, &p->lock);
    if (p->stopping)
      break;
    struct op *o = p->queue;
    p->queue = o->next;
    if (!p->queue)
      p->queue_tail = NULL;
    pthread_mutex_unlock (&p->lock);
    perform (p, o);
    v2k_completions_push (&p->done, &o->c);
    pthread_mutex_lock (&p->lock);
  }
  pthread_mutex_unlock (&p->lock);
  return NULL;
}

static int
submit (struct v2k_endpoint *ep, enum op_kind kind, void *buf, size_t len, int64_t off,
        struct v2k_io *io)
{
  struct file_priv *p = ep->priv;
  struct op *o = calloc (1, sizeof *o);
  if (!o) {
    snprintf (ep->last_error, sizeof ep->last_error, "out of memory");
    return -1;
  }
  *o = (struct op) { .c.io = io, .kind = kind, .buf = buf, .len = len, .off = off };
  pthread_mutex_lock (&p->lock);
  if (p->queue_tail)
    p->queue_tail->next = o;
  else
    p->queue = o;
  p->queue_tail = o;
  pthread_cond_signal (&p->work);
  pthread_mutex_unlock (&p->lock);
  return 0;
}

static int
ep_read (struct v2k_endpoint *ep, size_t conn, void *buf, size_t len, int64_t off,
         struct v2k_io *io)
{
  (void) conn;
  return submit (ep, OP_READ, buf, len, off, io);
}

static int
ep_write (struct v2k_endpoint *ep, size_t conn, const void *buf, size_t len, int64_t off,
          struct v2k_io *io)
{
  (void) conn;
  return submit (ep, OP_WRITE, (void *) buf, len, off, io);
}

static int
ep_zero (struct v2k_endpoint *ep, size_t conn, size_t len, int64_t off, struct v2k_io *io)
{
  (void) conn;
  return submit (ep, OP_ZERO, NULL, len, off, io);
}

static int
ep_flush (struct v2k_endpoint *ep, struct v2k_io *io)
{
  return submit (ep, OP_FLUSH, NULL, 0, 0, io);
}

static void
free_ops (struct op *o)
{
  while (o) {
    struct op *next = o->next;
    free (o);
    o = next;
  }
}

static void
file_close (struct v2k_endpoint *ep)
{
  struct file_priv *p = ep->priv;
  if (!p)
    return;
  pthread_mutex_lock (&p->lock);
  /* Requests not started are dropped: their buffers may be gone. */
  free_ops (p->queue);
  p->queue = p->queue_tail = NULL;
  p->stopping = true;
  pthread_cond_broadcast (&p->work);
  pthread_mutex_unlock (&p->lock);
  for (size_t i = 0; i < p->nthreads; i++)
    pthread_join (p->threads[i], NULL);
  v2k_completions_destroy (&p->done);
  if (p->fd >= 0)
    close (p->fd);
  if (p->dfd >= 0)
    close (p->dfd);
  pthread_cond_destroy (&p->work);
  pthread_mutex_destroy (&p->lock);
  free (p->zeros);
  free (p);
}

static const struct v2k_endpoint_ops file_ops = {
  .kind = "file",
  .read = ep_read,
  .write = ep_write,
  .zero = ep_zero,
  .flush = ep_flush,
  .pollfds = v2k_completions_ep_pollfds,
  .dispatch = v2k_completions_ep_dispatch,
  .allocated = v2k_allocated_unknown,
  .close = file_close,
};

struct v2k_endpoint *
v2k_file_open (const char *path, const char *name, bool writable, struct v2k_error *err)
{
  struct v2k_endpoint *ep = calloc (1, sizeof *ep);
  struct file_priv *p = calloc (1, sizeof *p);
  if (!ep || !p || !(ep->name = strdup (name)) || !(p->zeros = calloc (1, ZERO_BUF))) {
    if (p)
      free (p->zeros);
    if (ep)
      free (ep->name);
    free (ep);
    free (p);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  p->fd = p->dfd = -1;
  pthread_mutex_init (&p->lock, NULL);
  pthread_cond_init (&p->work, NULL);
  ep->ops = &file_ops;
  ep->priv = p;
  if (v2k_completions_init (&p->done, err) == -1)
    goto fail;
  ep->nconn = FILE_THREADS;
  ep->max_request = 32u << 20;
  int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
  struct stat st;
  /* A block device written to is claimed exclusively: nothing can mount it
   * or open it exclusively while the copy runs. */
  bool claim = writable && stat (path, &st) == 0 && S_ISBLK (st.st_mode);
  p->fd = open (path, flags | (claim ? O_EXCL : 0));
  if (p->fd < 0 || fstat (p->fd, &st) < 0) {
    v2k_error_errno (err, writable ? V2K_EXIT_TARGET : V2K_EXIT_TRANSFER, "%s: %s", name, path);
    goto fail;
  }
  p->dfd = open (path, flags | O_DIRECT);  /* tmpfs and some others refuse it */
  p->block = S_ISBLK (st.st_mode);
  p->punch = S_ISREG (st.st_mode);
  uint64_t size = (uint64_t) st.st_size;
  if (p->block && ioctl (p->fd, BLKGETSIZE64, &size) < 0) {
    v2k_error_errno (err, V2K_EXIT_TARGET, "%s: size of %s", name, path);
    goto fail;
  }
  ep->size = (int64_t) size;
  for (; p->nthreads < FILE_THREADS; p->nthreads++)
    if (pthread_create (&p->threads[p->nthreads], NULL, worker, p) != 0) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "%s: cannot start a thread", name);
      goto fail;
    }
  return ep;
 fail:
  v2k_endpoint_close (ep);
  return NULL;
}
