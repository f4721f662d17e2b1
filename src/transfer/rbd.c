/* The Ceph RBD endpoint, native through librbd: no qemu-nbd, no krbd and no
 * staging file in between. librbd completes requests on its own threads;
 * their callbacks only queue the result (completions.c), and dispatch()
 * runs it on the engine's thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include "completions.h"
#include "rbd.h"

struct rbd_priv {
  struct v2k_completions done;   /* first: the generic pollfds and dispatch */
  rados_t cluster;
  rados_ioctx_t ioctx;
  rbd_image_t image;
  bool cluster_ok, ioctx_ok;
};

struct pending { struct v2k_completion c; struct rbd_priv *p; };

static void
rbd_cb (rbd_completion_t c, void *arg)
{
  struct pending *pd = arg;
  ssize_t ret = rbd_aio_get_return_value (c);
  rbd_aio_release (c);
  pd->c.errnum = ret < 0 ? (int) -ret : 0;
  v2k_completions_push (&pd->p->done, &pd->c);
}

static int
completion (struct v2k_endpoint *ep, struct v2k_io *io, rbd_completion_t *c)
{
  struct pending *pd = calloc (1, sizeof *pd);
  if (!pd) {
    snprintf (ep->last_error, sizeof ep->last_error, "out of memory");
    return -1;
  }
  pd->p = ep->priv;
  pd->c.io = io;
  int r = rbd_aio_create_completion (pd, rbd_cb, c);
  if (r < 0) {
    free (pd);
    snprintf (ep->last_error, sizeof ep->last_error, "%s", strerror (-r));
    return -1;
  }
  return 0;
}

static int
started (struct v2k_endpoint *ep, rbd_completion_t c, int r)
{
  if (r < 0) {
    /* Not queued: no callback will come. */
    free (rbd_aio_get_arg (c));
    rbd_aio_release (c);
    snprintf (ep->last_error, sizeof ep->last_error, "%s", strerror (-r));
    return -1;
  }
  return 0;
}

static int
ep_read (struct v2k_endpoint *ep, size_t conn, void *buf, size_t len, int64_t off, struct v2k_io *io)
{
  (void) conn;
  struct rbd_priv *p = ep->priv;
  rbd_completion_t c;
  if (completion (ep, io, &c) == -1)
    return -1;
  return started (ep, c, rbd_aio_read (p->image, (uint64_t) off, len, buf, c));
}

static int
ep_write (struct v2k_endpoint *ep, size_t conn, const void *buf, size_t len, int64_t off,
          struct v2k_io *io)
{
  (void) conn;
  struct rbd_priv *p = ep->priv;
  rbd_completion_t c;
  if (completion (ep, io, &c) == -1)
    return -1;
  return started (ep, c, (int) rbd_aio_write (p->image, (uint64_t) off, len, buf, c));
}

/* Zeros go as write_zeroes, never discard: a partial discard does not zero
 * (it reads back the old data), while write_zeroes of whole objects deletes
 * them and keeps the image sparse. */
static int
ep_zero (struct v2k_endpoint *ep, size_t conn, size_t len, int64_t off, struct v2k_io *io)
{
  (void) conn;
  struct rbd_priv *p = ep->priv;
  rbd_completion_t c;
  if (completion (ep, io, &c) == -1)
    return -1;
  return started (ep, c, rbd_aio_write_zeroes (p->image, (uint64_t) off, len, c, 0, 0));
}

static int
ep_flush (struct v2k_endpoint *ep, struct v2k_io *io)
{
  struct rbd_priv *p = ep->priv;
  rbd_completion_t c;
  if (completion (ep, io, &c) == -1)
    return -1;
  return started (ep, c, rbd_aio_flush (p->image, c));
}

static void
ep_close (struct v2k_endpoint *ep)
{
  struct rbd_priv *p = ep->priv;
  if (!p)
    return;
  if (p->image)
    rbd_close (p->image);
  if (p->ioctx_ok)
    rados_ioctx_destroy (p->ioctx);
  if (p->cluster_ok)
    rados_shutdown (p->cluster);
  v2k_completions_destroy (&p->done);
  free (p);
}

static const struct v2k_endpoint_ops rbd_ops = {
  .kind = "rbd",
  .read = ep_read,
  .write = ep_write,
  .zero = ep_zero,
  .flush = ep_flush,
  .pollfds = v2k_completions_ep_pollfds,
  .dispatch = v2k_completions_ep_dispatch,
  .allocated = v2k_allocated_unknown,
  .close = ep_close,
};

int
v2k_rbd_parse (const char *spec, char *pool, size_t plen, char *image, size_t ilen)
{
  if (strncmp (spec, "rbd:", 4) != 0)
    return -1;
  const char *slash = strchr (spec + 4, '/');
  if (!slash || slash == spec + 4 || !slash[1] || strchr (slash + 1, '/'))
    return -1;
  if ((size_t) (slash - spec - 4) >= plen || strlen (slash + 1) >= ilen)
    return -1;
  snprintf (pool, plen, "%.*s", (int) (slash - spec - 4), spec + 4);
  snprintf (image, ilen, "%s", slash + 1);
  return 0;
}

/* Connects to the cluster and opens the pool; fails within TIMEOUT seconds
 * when the monitors cannot be reached. */
static int
connect_pool (struct rbd_priv *p, const struct v2k_rbd_conn *c, const char *pool,
              struct v2k_error *err)
{
  const char *conf = c->conf && *c->conf ? c->conf : "/etc/ceph/ceph.conf";
  int r = rados_create (&p->cluster, c->id && *c->id ? c->id : NULL);
  if (r < 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "Ceph: %s", strerror (-r));
    return -1;
  }
  p->cluster_ok = true;
  if ((r = rados_conf_read_file (p->cluster, conf)) < 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "Ceph configuration %s: %s", conf, strerror (-r));
    return -1;
  }
  char t[32];
  snprintf (t, sizeof t, "%d", c->timeout > 0 ? c->timeout : 10);
  rados_conf_set (p->cluster, "client_mount_timeout", t);
  rados_conf_set (p->cluster, "rados_mon_op_timeout", t);
  if ((r = rados_connect (p->cluster)) < 0) {
    v2k_error_set (err, V2K_EXIT_TARGET,
                   "cannot reach the Ceph cluster of %s as client.%s within %s s: %s; check the "
                   "monitors, the keyring and --ceph-conf/--ceph-id", conf,
                   c->id && *c->id ? c->id : "admin", t, strerror (-r));
    return -1;
  }
  if ((r = rados_ioctx_create (p->cluster, pool, &p->ioctx)) < 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "Ceph pool '%s': %s", pool, strerror (-r));
    return -1;
  }
  p->ioctx_ok = true;
  return 0;
}

int
v2k_rbd_prepare (const char *spec, const struct v2k_rbd_conn *c, int64_t size, bool ours,
                 bool recreate, int (*claim) (void *, struct v2k_error *), void *claim_opaque,
                 bool *created, struct v2k_error *err)
{
  char pool[256], image[256];
  *created = false;
  if (v2k_rbd_parse (spec, pool, sizeof pool, image, sizeof image) == -1) {
    v2k_error_set (err, V2K_EXIT_USAGE, "'%s' is not rbd:POOL/IMAGE", spec);
    return -1;
  }
  struct rbd_priv p = { 0 };
  int rc = -1;
  if (connect_pool (&p, c, pool, err) == -1)
    goto out;
  rbd_image_t img;
  int r = rbd_open (p.ioctx, image, &img, NULL);
  if (r == 0) {
    rbd_close (img);
    if (!ours) {
      v2k_error_set (err, V2K_EXIT_TARGET,
                     "RBD image %s already exists and this run did not create it; remove it or "
                     "map the disk to another image", spec);
      goto out;
    }
    if (!recreate) {
      rc = 0;
      goto out;
    }
    if ((r = rbd_remove (p.ioctx, image)) < 0) {
      v2k_error_set (err, V2K_EXIT_TARGET, "removing RBD image %s to recreate it: %s", spec,
                     strerror (-r));
      goto out;
    }
  }
  else if (r != -ENOENT) {
    v2k_error_set (err, V2K_EXIT_TARGET, "RBD image %s: %s", spec, strerror (-r));
    goto out;
  }
  else if (ours && !recreate) {
    /* Created before and gone now: an empty image topped up with a delta
     * would lose the disk's data. */
    v2k_error_set (err, V2K_EXIT_TARGET,
                   "RBD image %s, created by this run, is missing; its data is gone: run "
                   "'sync base --full' to copy the disk again", spec);
    goto out;
  }
  if (claim && claim (claim_opaque, err) == -1)
    goto out;
  rbd_image_options_t opts;
  rbd_image_options_create (&opts);
  r = rbd_create4 (p.ioctx, image, (uint64_t) size, opts);
  rbd_image_options_destroy (opts);
  if (r < 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "creating RBD image %s: %s", spec, strerror (-r));
    goto out;
  }
  *created = true;
  rc = 0;
 out:
  if (p.ioctx_ok)
    rados_ioctx_destroy (p.ioctx);
  if (p.cluster_ok)
    rados_shutdown (p.cluster);
  return rc;
}

int
v2k_rbd_identity (const char *spec, const struct v2k_rbd_conn *c, char **image_id,
                  int64_t *size, struct v2k_error *err)
{
  char pool[256], image[256];
  *image_id = NULL;
  *size = 0;
  if (v2k_rbd_parse (spec, pool, sizeof pool, image, sizeof image) == -1) {
    v2k_error_set (err, V2K_EXIT_USAGE, "'%s' is not rbd:POOL/IMAGE", spec);
    return -1;
  }
  struct rbd_priv p = { 0 };
  int rc = -1;
  if (connect_pool (&p, c, pool, err) == -1)
    goto out;
  rbd_image_t img;
  int r = rbd_open_read_only (p.ioctx, image, &img, NULL);
  if (r == -ENOENT) {
    rc = 0;
    goto out;
  }
  if (r < 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "RBD image %s: %s", spec, strerror (-r));
    goto out;
  }
  char id[128];
  uint64_t bytes = 0;
  if ((r = rbd_get_id (img, id, sizeof id)) < 0 || (r = rbd_get_size (img, &bytes)) < 0)
    v2k_error_set (err, V2K_EXIT_TARGET, "RBD image %s: %s", spec, strerror (-r));
  else if (!(*image_id = strdup (id)))
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
  else {
    *size = (int64_t) bytes;
    rc = 0;
  }
  rbd_close (img);
 out:
  if (p.ioctx_ok)
    rados_ioctx_destroy (p.ioctx);
  if (p.cluster_ok)
    rados_shutdown (p.cluster);
  return rc;
}

struct v2k_endpoint *
v2k_rbd_open (const char *spec, const char *name, const struct v2k_rbd_conn *c,
              struct v2k_error *err)
{
  char pool[256], image[256];
  if (v2k_rbd_parse (spec, pool, sizeof pool, image, sizeof image) == -1) {
    v2k_error_set (err, V2K_EXIT_USAGE, "'%s' is not rbd:POOL/IMAGE", spec);
    return NULL;
  }
  struct v2k_endpoint *ep = calloc (1, sizeof *ep);
  struct rbd_priv *p = calloc (1, sizeof *p);
  if (!ep || !p || !(ep->name = strdup (name))) {
    free (ep);
    free (p);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  ep->ops = &rbd_ops;
  ep->priv = p;
  ep->nconn = 1;
  ep->max_request = 32u << 20;
  if (v2k_completions_init (&p->done, err) == -1)
    goto fail;
  if (connect_pool (p, c, pool, err) == -1)
    goto fail;
  int r = rbd_open (p->ioctx, image, &p->image, NULL);
  if (r < 0) {
    p->image = NULL;
    v2k_error_set (err, V2K_EXIT_TARGET, "opening RBD image %s: %s", spec, strerror (-r));
    goto fail;
  }
  uint64_t size;
  if ((r = rbd_get_size (p->image, &size)) < 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "RBD image %s: %s", spec, strerror (-r));
    goto fail;
  }
  ep->size = (int64_t) size;
  return ep;
 fail:
  v2k_endpoint_close (ep);
  return NULL;
}

/* One mon_host entry: "[v2:h:p,v1:h:p]", "v1:h:p", "h:p" or "h". Appends
 * its v1 address (else its only one) as host:port. */
static int
monitor_add (const char *entry, char ***mons, size_t *n)
{
  char buf[512], *pick = NULL;
  snprintf (buf, sizeof buf, "%s", entry);
  char *save = NULL;
  for (char *a = strtok_r (buf, "[],", &save); a; a = strtok_r (NULL, "[],", &save)) {
    if (strncmp (a, "v1:", 3) == 0) {
      pick = a + 3;
      break;
    }
    if (!pick)
      pick = strncmp (a, "v2:", 3) == 0 ? a + 3 : a;
  }
  if (!pick || !*pick)
    return 0;
  char *slash = strchr (pick, '/');   /* "h:p/nonce" */
  if (slash)
    *slash = '\0';
  char **v = realloc (*mons, (*n + 2) * sizeof *v);
  if (!v)
    return -1;
  *mons = v;
  char *mon = NULL;
  if (strchr (pick, ':'))
    mon = strdup (pick);
  else if (asprintf (&mon, "%s:6789", pick) < 0)
    mon = NULL;
  if (!mon)
    return -1;
  v[(*n)++] = mon;
  v[*n] = NULL;
  return 0;
}

int
v2k_rbd_monitors (const struct v2k_rbd_conn *c, char ***mons, size_t *n, struct v2k_error *err)
{
  const char *conf = c->conf ? c->conf : "/etc/ceph/ceph.conf";
  rados_t cluster;
  *mons = NULL;
  *n = 0;
  if (rados_create (&cluster, c->id ? c->id : "admin") < 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "cannot create a Ceph client");
    return -1;
  }
  char val[4096] = "";
  int r = rados_conf_read_file (cluster, conf);
  if (r < 0) {
    rados_shutdown (cluster);
    v2k_error_set (err, V2K_EXIT_TARGET, "reading Ceph configuration %s: %s", conf, strerror (-r));
    return -1;
  }
  r = rados_conf_get (cluster, "mon_host", val, sizeof val);
  rados_shutdown (cluster);
  if (r < 0 || !val[0]) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s names no monitors (mon_host)", conf);
    return -1;
  }
  /* Entries are separated by commas or spaces outside brackets. */
  char entry[512];
  size_t len = 0;
  int depth = 0;
  for (const char *p = val;; p++) {
    bool end = *p == '\0' || (depth == 0 && (*p == ',' || *p == ' ' || *p == ';'));
    if (end) {
      entry[len] = '\0';
      if (len && monitor_add (entry, mons, n) == -1) {
        v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
        return -1;
      }
      len = 0;
      if (!*p)
        break;
      continue;
    }
    depth += *p == '[' ? 1 : *p == ']' ? -1 : 0;
    if (len + 1 < sizeof entry)
      entry[len++] = *p;
  }
  if (*n == 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s names no monitors (mon_host)", conf);
    return -1;
  }
  return 0;
}
