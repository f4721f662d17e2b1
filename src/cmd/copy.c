/* copy: the engine with no vCenter attached, between two NBD URIs or image
 * files (served by qemu-nbd). For repairs by hand, and for the benchmark. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "cmd.h"
#include "../transfer/areas.h"
#include "../transfer/copy.h"
#include "../transfer/file.h"
#include "../transfer/server.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"
#include "../util/signals.h"
#include "../util/units.h"
#include "../util/getopt.h"

static void
copy_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k copy [--areas FILE|-] [--request-size N] [--max-inflight N]\n"
           "                          [--connections N] [--coalesce-gap N] [--target-is-zero]\n"
           "                          [--pwrite] SRC DST\n"
           "\n"
           "Copies SRC into DST with the migration engine. Each is an NBD URI (nbd://…,\n"
           "nbd+unix:///?socket=…) or an existing image file (raw, qcow2, vmdk; served by\n"
           "qemu-nbd, SRC read-only). Zero buffers become zero writes. DST is flushed.\n"
           "\n"
           "  --areas FILE|-      copy only these areas: [{\"start\":N,\"length\":N}, …],\n"
           "                      sorted, apart, inside the disk; - reads stdin.\n"
           "                      Without it: everything SRC reports allocated\n"
           "  --request-size N    bytes per request (default 1M; K/M/G suffixes)\n"
           "  --max-inflight N    bytes in flight at most (default 64M)\n"
           "  --connections N     connections per server (default 4)\n"
           "  --coalesce-gap N    join areas less than N apart (default 64K)\n"
           "  --target-is-zero    DST reads zeros already: zero buffers need no write\n"
           "  --pwrite            DST is a raw file or block device: write it with\n"
           "                      pwrite (zeros: punched holes, BLKZEROOUT), no qemu-nbd\n"
           "  --json              print the statistics as JSON\n"
           "  -h, --help\n");
}

enum { OPT_AREAS = 1000, OPT_REQ, OPT_INFLIGHT, OPT_CONN, OPT_GAP, OPT_TZ, OPT_JSON, OPT_PWRITE };

static bool
is_uri (const char *s)
{
  return strncmp (s, "nbd://", 6) == 0 || strncmp (s, "nbd+unix://", 11) == 0 ||
    strncmp (s, "nbds://", 7) == 0 || strncmp (s, "nbds+unix://", 12) == 0;
}

/* DST written directly: only a raw image, which is the bytes themselves. */
static struct v2k_endpoint *
open_pwrite_target (const char *arg, struct v2k_error *err)
{
  if (is_uri (arg)) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--pwrite wants a file or block device as DST, not a URI");
    return NULL;
  }
  struct stat st;
  if (stat (arg, &st) < 0) {
    v2k_error_errno (err, V2K_EXIT_USAGE, "target %s", arg);
    return NULL;
  }
  if (!S_ISBLK (st.st_mode)) {
    CLEANUP_FREE char *fmt = v2k_image_format (arg, err);
    if (!fmt)
      return NULL;
    if (strcmp (fmt, "raw") != 0) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--pwrite writes raw images only; %s is %s", arg, fmt);
      return NULL;
    }
  }
  return v2k_file_open (arg, "target", true, err);
}

/* An endpoint for ARG: the URI itself, or qemu-nbd on the file. */
static struct v2k_endpoint *
open_side (const char *arg, const char *name, bool writable, int conns, const char *rundir,
           struct v2k_server *srv, struct v2k_error *err)
{
  if (is_uri (arg))
    return v2k_nbd_open (arg, name, writable, (size_t) conns, err);
  if (access (arg, writable ? R_OK | W_OK : R_OK) < 0) {
    v2k_error_errno (err, V2K_EXIT_USAGE, "%s %s", name, arg);
    return NULL;
  }
  CLEANUP_FREE char *fmt = v2k_image_format (arg, err);
  if (!fmt)
    return NULL;
  if (v2k_server_qemu_nbd (rundir, name, arg, fmt, !writable, conns, srv, err) == -1)
    return NULL;
  return v2k_nbd_open (srv->uri, name, writable, (size_t) conns, err);
}

int
cmd_copy (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    { "areas", required_argument, NULL, OPT_AREAS },
    { "request-size", required_argument, NULL, OPT_REQ },
    { "max-inflight", required_argument, NULL, OPT_INFLIGHT },
    { "connections", required_argument, NULL, OPT_CONN },
    { "coalesce-gap", required_argument, NULL, OPT_GAP },
    { "target-is-zero", no_argument, NULL, OPT_TZ },
    { "json", no_argument, NULL, OPT_JSON },
    { "pwrite", no_argument, NULL, OPT_PWRITE },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *areas_file = NULL;
  int64_t req = 1 << 20, inflight = 64 << 20, conns = 4, gap = 64 << 10;
  bool target_is_zero = false, pwrite_target = false;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    switch (c) {
    case OPT_AREAS: areas_file = optarg; break;
    case OPT_REQ:
      if (v2k_parse_size ("--request-size", optarg, 4096, 32 << 20, &req, err) == -1)
        return err->code;
      break;
    case OPT_INFLIGHT:
      if (v2k_parse_size ("--max-inflight", optarg, 4096, 1LL << 32, &inflight, err) == -1)
        return err->code;
      break;
    case OPT_CONN:
      if (v2k_parse_size ("--connections", optarg, 1, 16, &conns, err) == -1)
        return err->code;
      break;
    case OPT_GAP:
      if (v2k_parse_size ("--coalesce-gap", optarg, 0, 1LL << 30, &gap, err) == -1)
        return err->code;
      break;
    case OPT_TZ: target_is_zero = true; break;
    case OPT_JSON: g->json = true; break;
    case OPT_PWRITE: pwrite_target = true; break;
    case 'h': copy_help (stdout); return 0;
    default: return v2k_usage_error (err, "copy", "%s", argv[optind - 1]);
    }
  }
  if (argc - optind != 2)
    return v2k_usage_error (err, "copy", "want SRC and DST");
  if (inflight < req)
    return v2k_usage_error (err, "copy", "--max-inflight must be at least --request-size");
  const char *src_arg = argv[optind], *dst_arg = argv[optind + 1];

  v2k_extents areas = empty_vector;
  CLEANUP_FREE char *areas_text = NULL;
  size_t areas_len = 0;
  if (areas_file) {
    if (strcmp (areas_file, "-") == 0) {
      if (!(areas_text = v2k_read_stream (0, 1u << 30, &areas_len, V2K_EXIT_USAGE, err)))
        return err->code;
    }
    else if (!(areas_text = v2k_read_file (areas_file, 1u << 30, &areas_len, V2K_EXIT_USAGE, err)))
      return err->code;
  }

  bool owned = false;
  struct v2k_server ssrv = { 0 }, dsrv = { 0 };
  struct v2k_endpoint *src = NULL, *dst = NULL;
  int rc = -1;
  CLEANUP_FREE char *rundir = v2k_rundir (NULL, &owned, err);
  if (!rundir)
    goto out;
  if (!(src = open_side (src_arg, "source", false, (int) conns, rundir, &ssrv, err)) ||
      !(dst = pwrite_target ? open_pwrite_target (dst_arg, err)
        : open_side (dst_arg, "target", true, (int) conns, rundir, &dsrv, err)))
    goto out;
  if (dst->size < src->size) {
    v2k_error_set (err, V2K_EXIT_TARGET, "target is smaller (%lld bytes) than the source (%lld)",
                   (long long) dst->size, (long long) src->size);
    goto out;
  }
  if (areas_text) {
    if (v2k_areas_parse (areas_text, areas_len, areas_file, src->size, &areas, err) == -1)
      goto out;
  }
  else if (src->ops->allocated (src, &areas, err) == -1) {
    if (v2k_error_isset (err))
      goto out;
    /* No block status: copy everything. */
    v2k_extents_add (&areas, 0, src->size);
  }
  v2k_extents_coalesce (&areas, gap);
  struct v2k_copy_opts o = { .request_size = (size_t) req, .max_inflight = (size_t) inflight,
                             .target_is_zero = target_is_zero, .retries = 3,
                             .source_zeros = true,
                             .stop = &v2k_stop_requested };
  struct v2k_copy_stats st;
  v2k_signals_install ();
  if (v2k_copy (src, dst, &areas, &o, &st, err) == -1)
    goto out;
  if (g->json) {
    json_t *j = json_pack ("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}", "ok", 1,
                           "areas", (json_int_t) areas.len, "bytes_total", (json_int_t) st.bytes_total,
                           "bytes_copied", (json_int_t) st.bytes_copied,
                           "bytes_zeroed", (json_int_t) st.bytes_zeroed,
                           "bytes_skipped", (json_int_t) st.bytes_skipped,
                           "bytes_unread", (json_int_t) st.bytes_unread,
                           "requests", (json_int_t) st.requests, "retried", (json_int_t) st.retried,
                           "seconds", st.seconds,
                           "source_connections", (json_int_t) src->nconn,
                           "target_connections", (json_int_t) dst->nconn);
    json_dumpf (j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
    json_decref (j);
  }
  else if (!g->quiet)
    fprintf (stderr, "copied %lld bytes (%lld as data, %lld as zeros) in %zu areas, %.2f s\n",
             (long long) st.bytes_total, (long long) st.bytes_copied, (long long) st.bytes_zeroed,
             areas.len, st.seconds);
  rc = 0;
 out:
  v2k_endpoint_close (src);
  v2k_endpoint_close (dst);
  v2k_server_stop (&ssrv);
  v2k_server_stop (&dsrv);
  if (owned && rundir)
    rmdir (rundir);
  v2k_extents_reset (&areas);
  return rc == 0 ? 0 : err->code;
}
