/* sync base|incr|final: copy each disk's allocated or changed areas from
 * the migration snapshot into its target. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "session.h"
#include "../transfer/sync.h"
#include "../util/signals.h"
#include "../util/units.h"

static void
sync_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR sync base|incr|final [--full] [--jobs N]\n"
           "                     [--request-size N] [--max-inflight N] [--coalesce-gap N]\n"
           "                     [--connections N] [--force-block-device] [connection options]\n"
           "\n"
           "base   copies every disk's allocated areas (QueryChangedDiskAreas \"*\") at the\n"
           "       base snapshot; without CBT, the source's block status, else everything.\n"
           "       It checkpoints, and a re-run resumes each disk where it stopped.\n"
           "incr   copies the areas changed since each disk's committed changeId, at the\n"
           "final  latest incr (or final) snapshot; then the older migration snapshot is\n"
           "       removed. A disk's new changeId is committed only after its target is\n"
           "       flushed. Re-running after any failure brings the targets right.\n"
           "\n"
           "  --full               base: recreate the targets this run made and copy all\n"
           "                       again (after 'cbt reset')\n"
           "  --jobs N             disks copied at once (default min(disks, 4))\n"
           "  --request-size N     bytes per request (default 2M for vddk, else 1M)\n"
           "  --max-inflight N     bytes in flight per disk (default 64M)\n"
           "  --coalesce-gap N     join areas less than N apart (default 64K)\n"
           "  --connections N      NBD connections per server (default 4)\n"
           "  --checkpoint-interval SEC  base: flush and record a resume point this often\n"
           "                       (default 2)\n"
           "  --force-block-device skip the signature check of block targets\n"
           "  --ceph-conf FILE     rbd: the Ceph configuration (default: init's, else\n"
           "                       /etc/ceph/ceph.conf)\n"
           "  --ceph-id ID         rbd: the client id (default: init's, else admin)\n"
           "  --ceph-timeout SEC   rbd: give up reaching the monitors after SEC (default 10)\n"
           "  -h, --help\n"
           "\n" V2K_CONN_HELP);
}

enum { OPT_FULL = OPT_CONN_LAST, OPT_JOBS, OPT_REQ, OPT_INFLIGHT, OPT_GAP, OPT_CONNS, OPT_FORCE_BLOCK,
       OPT_CHECKPOINT, OPT_CEPH_CONF, OPT_CEPH_ID, OPT_CEPH_TIMEOUT };

int
cmd_sync (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    { "full", no_argument, NULL, OPT_FULL },
    { "jobs", required_argument, NULL, OPT_JOBS },
    { "request-size", required_argument, NULL, OPT_REQ },
    { "max-inflight", required_argument, NULL, OPT_INFLIGHT },
    { "coalesce-gap", required_argument, NULL, OPT_GAP },
    { "connections", required_argument, NULL, OPT_CONNS },
    { "force-block-device", no_argument, NULL, OPT_FORCE_BLOCK },
    { "checkpoint-interval", required_argument, NULL, OPT_CHECKPOINT },
    { "ceph-conf", required_argument, NULL, OPT_CEPH_CONF },
    { "ceph-id", required_argument, NULL, OPT_CEPH_ID },
    { "ceph-timeout", required_argument, NULL, OPT_CEPH_TIMEOUT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  bool full = false, force_block = false;
  int64_t jobs = 0, req = 0, inflight = 64 << 20, gap = 64 << 10, conns = 4;
  double checkpoint = 2.0;
  const char *ceph_conf = NULL, *ceph_id = NULL;
  int64_t ceph_timeout = 10;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
    int handled = v2k_conn_getopt (c, optarg, &conn, err);
    if (handled == -1)
      return err->code;
    if (handled)
      continue;
    int r = 0;
    switch (c) {
    case OPT_FULL: full = true; break;
    case OPT_FORCE_BLOCK: force_block = true; break;
    case OPT_JOBS: r = v2k_parse_size ("--jobs", optarg, 1, 16, &jobs, err); break;
    case OPT_REQ: r = v2k_parse_size ("--request-size", optarg, 4096, 32 << 20, &req, err); break;
    case OPT_INFLIGHT: r = v2k_parse_size ("--max-inflight", optarg, 65536, 1LL << 32, &inflight, err); break;
    case OPT_GAP: r = v2k_parse_size ("--coalesce-gap", optarg, 0, 1LL << 30, &gap, err); break;
    case OPT_CONNS: r = v2k_parse_size ("--connections", optarg, 1, 16, &conns, err); break;
    case OPT_CHECKPOINT: {
      char *end;
      checkpoint = strtod (optarg, &end);
      if (*end || !(checkpoint >= 0.01 && checkpoint <= 3600)) {
        v2k_error_set (err, V2K_EXIT_USAGE, "--checkpoint-interval: '%s' is not a number of seconds "
                       "from 0.01 to 3600", optarg);
        return err->code;
      }
      break;
    }
    case OPT_CEPH_CONF: ceph_conf = optarg; break;
    case OPT_CEPH_ID: ceph_id = optarg; break;
    case OPT_CEPH_TIMEOUT: r = v2k_parse_size ("--ceph-timeout", optarg, 1, 3600, &ceph_timeout, err); break;
    case 'h': sync_help (stdout); return 0;
    default: return v2k_usage_error (err, "sync", "%s", argv[optind - 1]);
    }
    if (r == -1)
      return err->code;
  }
  if (optind + 1 != argc)
    return v2k_usage_error (err, "sync", "want exactly one of base, incr, final");
  int kind = jm_enum_index (v2k_snapshot_kind_names, argv[optind]);
  if (kind < 0)
    return v2k_usage_error (err, "sync", "'%s' is not base, incr or final", argv[optind]);
  if (full && kind != SNAP_BASE)
    return v2k_usage_error (err, "sync", "--full belongs to 'sync base'");
  if (req > 0 && inflight < req)
    return v2k_usage_error (err, "sync", "--max-inflight must be at least --request-size");

  struct v2k_session s;
  int rc = -1;
  char command[32];
  snprintf (command, sizeof command, "sync %s", argv[optind]);
  v2k_signals_install ();
  if (v2k_session_open (g, command, true, &conn, &s, err) == 0) {
    s.phase = kind == SNAP_BASE ? PHASE_SYNC_BASE : kind == SNAP_INCR ? PHASE_SYNC_INCR : PHASE_SYNC_FINAL;
    size_t ndisks = s.m->n_disks;
    if (req == 0)
      req = s.m->transport.kind == TRANSPORT_VDDK ? 2 << 20 : 1 << 20;
    struct v2k_sync_ctx ctx = {
      .m = s.m, .workdir = s.workdir, .ev = &s.ev, .soap = s.soap,
      .username = conn.username, .password = conn.password, .kind = kind, .full = full,
      .jobs = jobs > 0 ? (int) jobs : (int) (ndisks < 4 ? ndisks : 4),
      .connections = (int) conns, .request_size = (size_t) req, .max_inflight = (size_t) inflight,
      .coalesce_gap = gap, .force_block_device = force_block, .checkpoint_seconds = checkpoint,
      .ceph_conf = ceph_conf, .ceph_id = ceph_id, .ceph_timeout = (int) ceph_timeout,
      .progress_bar = !g->quiet && !g->json && isatty (2),
      .task_timeout = conn.task_timeout > 0 ? (int) conn.task_timeout : 3600,
    };
    rc = v2k_sync_run (&ctx, err);
    if (rc == 0 && !g->quiet)
      printf ("sync %s done: %zu disk(s) of %s\n", argv[optind], ndisks, s.m->source.vm.name);
  }
  v2k_session_close (&s, rc, err);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
