/* sync base|incr|final: copy each disk's allocated or changed areas from
 * the migration snapshot into its target. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "session.h"
#include "steps.h"
#include "../util/signals.h"
#include "../util/getopt.h"

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
           "  -h, --help\n"
           "\n" V2K_SYNC_TUNING_HELP
           "\n" V2K_CONN_HELP);
}

int
cmd_sync (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    V2K_SYNC_TUNING_OPTIONS,
    { "full", no_argument, NULL, OPT_SYNC_FULL },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  struct v2k_sync_opts so;
  v2k_sync_opts_init (&so);
  int c;
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    int handled = v2k_conn_getopt (c, optarg, &conn, err);
    if (handled == 0)
      handled = v2k_sync_getopt (c, optarg, &so, err);
    if (handled == -1)
      return err->code;
    if (handled)
      continue;
    switch (c) {
    case 'h': sync_help (stdout); return 0;
    default: return v2k_usage_error (err, "sync", "%s", argv[optind - 1]);
    }
  }
  if (optind + 1 != argc)
    return v2k_usage_error (err, "sync", "want exactly one of base, incr, final");
  int kind = jm_enum_index (v2k_snapshot_kind_names, argv[optind]);
  if (kind < 0)
    return v2k_usage_error (err, "sync", "'%s' is not base, incr or final", argv[optind]);
  if (so.full && kind != SNAP_BASE)
    return v2k_usage_error (err, "sync", "--full belongs to 'sync base'");

  struct v2k_session s;
  int rc = -1;
  char command[32];
  snprintf (command, sizeof command, "sync %s", argv[optind]);
  v2k_signals_install ();
  if (v2k_session_open (g, command, true, &conn, &s, err) == 0) {
    rc = v2k_step_sync (&s, &conn, kind, &so, !g->quiet && !g->json && isatty (2), err);
    if (rc == 0 && !g->quiet)
      printf ("sync %s done: %zu disk(s) of %s\n", argv[optind], s.m->n_disks, s.m->source.vm.name);
  }
  v2k_session_close (&s, rc, err);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
