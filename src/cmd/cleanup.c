/* cleanup: stop this run's helper processes and remove this run's
 * snapshots. Target disks and snapshots that are not this run's are never
 * touched; a second run is a no-op. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "session.h"
#include "steps.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"
#include "../util/spawn.h"
#include "../transfer/server.h"
#include "../util/getopt.h"

int
v2k_step_cleanup (struct v2k_session *s, struct v2k_conn_args *conn, bool keep_snapshots,
                  bool workdir_goes, int *stopped, int *removed, struct v2k_error *err)
{
  char now[32];
  v2k_now_rfc3339 (now);
  s->m->phases.cleanup.state = STEP_RUNNING;
  v2k_set_str (&s->m->phases.cleanup.started, now);
  /* Those stopped when the session opened, and any left since. */
  *stopped = s->stale_helpers + v2k_server_stop_stale (s->workdir);
  *removed = 0;
  if (!keep_snapshots) {
    if ((!s->soap && v2k_session_connect (s, conn, err) == -1) ||
        v2k_step_remove_snapshots (s, conn->task_timeout > 0 ? conn->task_timeout : 3600, removed,
                                   err) == -1)
      return -1;
  }
  v2k_now_rfc3339 (now);
  s->m->phases.cleanup.state = STEP_DONE;
  v2k_set_str (&s->m->phases.cleanup.finished, now);
  if (v2k_session_save (s, err) == -1)
    return -1;
  v2k_session_event (s, EV_INFO, NULL, "cleanup.done",
                     json_pack ("{s:i, s:i, s:b}", "helpers_stopped", *stopped,
                                "snapshots_removed", *removed, "workdir_removed", workdir_goes));
  return 0;
}

static void
cleanup_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR cleanup [--keep-workdir] [--keep-snapshots]\n"
           "                     [connection options]\n"
           "\n"
           "Stops the helper processes this run started (qemu-nbd, nbdkit: from the\n"
           "pidfiles in DIR/run, each checked to be ours before any signal), and removes\n"
           "this run's snapshots: those the manifest records, by moref, plus any named\n"
           "ablestack-v2k-<run_id>-… that an interrupted command never recorded. Target\n"
           "disks and other snapshots are never touched. Safe to run after a crash and\n"
           "to run twice. The workdir itself goes only once the migration is done, and\n"
           "never with --keep-workdir.\n"
           "\n"
           "  --keep-workdir    keep the workdir even when the migration is done\n"
           "  --keep-snapshots  leave the snapshots on vCenter\n"
           "  -h, --help\n"
           "\n" V2K_CONN_HELP);
}

enum { OPT_KEEP_WORKDIR = OPT_CONN_LAST, OPT_KEEP_SNAPSHOTS };

int
cmd_cleanup (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    { "keep-workdir", no_argument, NULL, OPT_KEEP_WORKDIR },
    { "keep-snapshots", no_argument, NULL, OPT_KEEP_SNAPSHOTS },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  bool keep_workdir = false, keep_snapshots = false;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    int handled = v2k_conn_getopt (c, optarg, &conn, err);
    if (handled == -1)
      return err->code;
    if (handled)
      continue;
    switch (c) {
    case OPT_KEEP_WORKDIR: keep_workdir = true; break;
    case OPT_KEEP_SNAPSHOTS: keep_snapshots = true; break;
    case 'h': cleanup_help (stdout); return 0;
    default: return v2k_usage_error (err, "cleanup", "%s", argv[optind - 1]);
    }
  }
  if (optind != argc)
    return v2k_usage_error (err, "cleanup", "unexpected argument '%s'", argv[optind]);

  struct v2k_session s;
  int rc = -1, stopped = 0, removed = 0;
  if (v2k_session_open (g, "cleanup", true, NULL, &s, err) == -1)
    goto out;
  s.phase = s.m->phase;
  bool done = s.m->phase == PHASE_DONE;
  if (v2k_step_cleanup (&s, &conn, keep_snapshots, done && !keep_workdir, &stopped, &removed,
                        err) == -1)
    goto out;
  if (!g->quiet)
    printf ("cleanup: %d helper process(es) stopped, %d snapshot(s) removed%s\n", stopped, removed,
            done && !keep_workdir ? ", workdir removed"
            : keep_workdir ? "" : "; the workdir stays until the migration is done");
  rc = 0;
  if (done && !keep_workdir) {
    /* Only our own files: the workdir holds nothing else. */
    CLEANUP_FREE char *cmd_dir = strdup (s.workdir);
    v2k_session_close (&s, rc, err);
    const char *argv_rm[] = { "rm", "-rf", "--", cmd_dir, NULL };
    struct v2k_spawn sp = { .argv = argv_rm };
    int status;
    if (v2k_spawn_run (&sp, &status, err) == -1 || status != 0) {
      v2k_error_set (err, V2K_EXIT_WORKDIR, "removing workdir %s failed", cmd_dir);
      rc = -1;
    }
    v2k_conn_args_free (&conn);
    return rc == 0 ? 0 : err->code;
  }
 out:
  v2k_session_close (&s, rc, err);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
