/* run: the whole migration in one command. init (unless the workdir has a
 * run already), cbt enable, base snapshot and sync, incremental rounds until
 * the predicted final sync fits the downtime target, then cutover (with a
 * verify before the domain is defined), then cleanup. Each phase is
 * recorded by the steps themselves, so a re-run resumes at the first
 * unfinished one and never re-inits. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "cmd.h"
#include "session.h"
#include "steps.h"
#include "../util/cleanup.h"
#include "../util/crashpoint.h"
#include "../util/fsutil.h"
#include "../util/signals.h"
#include "../util/units.h"
#include "../util/getopt.h"

enum { UNTIL_CUTOVER, UNTIL_READY };

struct run_opts {
  int64_t max_incr, incr_interval, downtime_target;
  int until;
  struct v2k_verify_opts verify;
  bool verify_off;
};

static void
run_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k [--workdir DIR] run --vm SPEC --vcenter URL --dst DIR [init options]\n"
           "                     [--max-incr N] [--incr-interval SEC] [--downtime-target SEC]\n"
           "                     [--until ready|cutover] [--verify full|sample:N|none]\n"
           "                     [cutover options] [copy tuning] [connection options]\n"
           "\n"
           "Runs the whole migration: init, cbt enable, base snapshot and sync, then\n"
           "incremental rounds, then cutover, verify and cleanup. After each incremental\n"
           "round it predicts the final sync's duration (the round's changed bytes over\n"
           "the measured copy rate, plus the measured snapshot overhead) and proceeds to\n"
           "the cutover once that is within --downtime-target, or after --max-incr rounds.\n"
           "With --workdir of an existing run it resumes at the first unfinished phase and\n"
           "never re-inits. SIGINT/SIGTERM stop it at the next safe point; run it again to\n"
           "go on. The verify runs after the final sync, before the domain is defined.\n"
           "\n"
           "  --max-incr N          at most N incremental rounds per invocation (default 6)\n"
           "  --incr-interval SEC   pause between incremental rounds (default 10)\n"
           "  --downtime-target SEC the predicted final sync to aim for (default 60)\n"
           "  --until ready         stop once the prediction meets the target (state\n"
           "                        'ready'); a later 'run' does more rounds and cuts over\n"
           "  --until cutover       go all the way (default)\n"
           "  --verify MODE         full (default), sample:N or none\n"
           "  --json                print a JSON summary\n"
           "  -h, --help\n"
           "\n"
           "Init (for a new run):\n" V2K_INIT_HELP
           "\n" V2K_CUTOVER_HELP "\n" V2K_SYNC_TUNING_HELP "\n" V2K_CONN_HELP);
}

enum { OPT_MAX_INCR = 1300, OPT_INCR_INTERVAL, OPT_DOWNTIME_TARGET, OPT_UNTIL, OPT_VERIFY, OPT_JSON };

static int
verify_arg (const char *arg, struct run_opts *o, struct v2k_error *err)
{
  o->verify.kind = -1;
  if (strcmp (arg, "full") == 0)
    return 0;
  if (strcmp (arg, "none") == 0) {
    o->verify_off = true;
    return 0;
  }
  if (strncmp (arg, "sample:", 7) == 0)
    return v2k_parse_size ("--verify sample:N", arg + 7, 1, 1000000, &o->verify.samples, err);
  v2k_error_set (err, V2K_EXIT_USAGE, "--verify: '%s' is not full, sample:N or none", arg);
  return -1;
}

static int
run_getopt (int c, const char *arg, struct run_opts *o, struct v2k_error *err)
{
  switch (c) {
  case OPT_MAX_INCR: return v2k_parse_size ("--max-incr", arg, 0, 1000, &o->max_incr, err);
  case OPT_INCR_INTERVAL: return v2k_parse_size ("--incr-interval", arg, 0, 86400, &o->incr_interval, err);
  case OPT_DOWNTIME_TARGET:
    return v2k_parse_size ("--downtime-target", arg, 1, 86400, &o->downtime_target, err);
  case OPT_UNTIL:
    if (strcmp (arg, "ready") == 0)
      o->until = UNTIL_READY;
    else if (strcmp (arg, "cutover") == 0)
      o->until = UNTIL_CUTOVER;
    else {
      v2k_error_set (err, V2K_EXIT_USAGE, "--until: '%s' is not ready or cutover", arg);
      return -1;
    }
    return 0;
  case OPT_VERIFY: return verify_arg (arg, o, err);
  }
  return 0;
}

static int
interrupted (struct v2k_error *err)
{
  if (!v2k_stop_requested)
    return 0;
  v2k_error_set (err, V2K_EXIT_INTERRUPTED, "run stopped by a signal at a safe point; "
                 "run it again with the same --workdir to go on");
  return -1;
}

/* Bytes the syncs have written so far (data and zeroes), over all disks. */
static int64_t
bytes_moved (const struct v2k_manifest *m)
{
  int64_t b = 0;
  for (size_t i = 0; i < m->n_disks; i++)
    b += m->disks[i].counters.bytes_copied + m->disks[i].counters.bytes_zeroed;
  return b;
}

static bool
base_done (const struct v2k_manifest *m)
{
  for (size_t i = 0; i < m->n_disks; i++)
    if (m->disks[i].base.state != STEP_DONE)
      return false;
  return true;
}

/* What this invocation measured: copy throughput over its syncs. */
struct meter {
  int64_t bytes;
  double seconds;
};

static int
timed_sync (struct v2k_session *s, const struct v2k_conn_args *conn, int kind,
            const struct v2k_sync_opts *so, bool bar, struct meter *mt, int64_t *moved,
            struct v2k_error *err)
{
  int64_t before = bytes_moved (s->m);
  double t0 = v2k_monotonic_seconds ();
  if (v2k_step_sync (s, conn, kind, so, bar, err) == -1)
    return -1;
  *moved = bytes_moved (s->m) - before;
  mt->bytes += *moved;
  mt->seconds += v2k_monotonic_seconds () - t0;
  return 0;
}

static int
base_phase (struct v2k_session *s, const struct v2k_conn_args *conn, const struct v2k_sync_opts *so,
            bool bar, FILE *out, struct meter *mt, struct v2k_error *err)
{
  if (base_done (s->m))
    return 0;
  struct v2k_snapshot_opts sn = { .kind = SNAP_BASE, .reuse_unsynced = true,
                                  .task_timeout = conn->task_timeout };
  const struct v2k_snapshot *snap;
  bool adopted;
  int64_t moved;
  if (v2k_step_snapshot (s, &sn, &snap, &adopted, err) == -1 || interrupted (err))
    return -1;
  if (out)
    fprintf (out, "run: base snapshot %s; copying the base\n", snap->moref);
  if (timed_sync (s, conn, SNAP_BASE, so, bar, mt, &moved, err) == -1)
    return -1;
  if (out)
    fprintf (out, "run: base copied (%lld bytes)\n", (long long) moved);
  return 0;
}

/* The forecast after a round: the final sync should move about what this
 * round moved, at the rate measured so far, plus a snapshot's overhead. */
static void
forecast_update (struct v2k_session *s, const struct run_opts *o, const struct meter *mt,
                 int64_t round_bytes, double snapshot_seconds)
{
  struct v2k_forecast *f = &s->m->forecast;
  char now[32];
  v2k_now_rfc3339 (now);
  f->round++;
  f->last_round_bytes = round_bytes;
  if (mt->seconds > 0 && mt->bytes > 0)
    f->rate_bps = (int64_t) ((double) mt->bytes / mt->seconds);
  f->snapshot_ms = (int64_t) (snapshot_seconds * 1000);
  double copy = f->rate_bps > 0 ? (double) round_bytes / (double) f->rate_bps : 0;
  f->predicted_final_ms = f->snapshot_ms + (int64_t) (copy * 1000);
  f->downtime_target_ms = o->downtime_target * 1000;
  f->ready = f->predicted_final_ms <= f->downtime_target_ms;
  v2k_set_str (&f->decided, now);
}

static int
pause_between_rounds (int64_t seconds, struct v2k_error *err)
{
  double end = v2k_monotonic_seconds () + (double) seconds;
  while (v2k_monotonic_seconds () < end) {
    if (interrupted (err))
      return -1;
    struct timespec nap = { 0, 200 * 1000 * 1000 };
    nanosleep (&nap, NULL);
  }
  return interrupted (err);
}

static int
incr_rounds (struct v2k_session *s, const struct v2k_conn_args *conn, const struct run_opts *o,
             const struct v2k_sync_opts *so, bool bar, FILE *out, struct meter *mt,
             struct v2k_error *err)
{
  struct v2k_forecast *f = &s->m->forecast;
  f->ready = false;
  for (int64_t round = 0; round < o->max_incr; round++) {
    if (round > 0 && pause_between_rounds (o->incr_interval, err) == -1)
      return -1;
    struct v2k_snapshot_opts sn = { .kind = SNAP_INCR, .reuse_unsynced = true,
                                    .task_timeout = conn->task_timeout };
    const struct v2k_snapshot *snap;
    bool adopted;
    int64_t moved;
    double t0 = v2k_monotonic_seconds ();
    if (v2k_step_snapshot (s, &sn, &snap, &adopted, err) == -1 || interrupted (err))
      return -1;
    double snap_seconds = v2k_monotonic_seconds () - t0;
    if (timed_sync (s, conn, SNAP_INCR, so, bar, mt, &moved, err) == -1)
      return -1;
    forecast_update (s, o, mt, moved, snap_seconds);
    if (v2k_session_save (s, err) == -1)
      return -1;
    v2k_session_event (s, EV_INFO, NULL, "run.forecast",
                       json_pack ("{s:I, s:I, s:I, s:I, s:I, s:b}", "round", (json_int_t) f->round,
                                  "changed_bytes", (json_int_t) moved,
                                  "rate_bps", (json_int_t) f->rate_bps,
                                  "snapshot_ms", (json_int_t) f->snapshot_ms,
                                  "predicted_final_ms", (json_int_t) f->predicted_final_ms,
                                  "ready", f->ready));
    if (out)
      fprintf (out, "run: incremental round %lld: %lld bytes; predicted final sync %.1f s "
               "(target %lld s)%s\n", (long long) f->round, (long long) moved,
               (double) f->predicted_final_ms / 1000.0, (long long) o->downtime_target,
               f->ready ? ": ready for cutover" : "");
    if (f->ready || interrupted (err))
      break;
  }
  return interrupted (err);
}

static json_t *
run_summary (const struct v2k_manifest *m, const char *workdir, const char *state, json_t *cutover)
{
  int64_t base = 0, incr = 0, final = 0;
  for (size_t i = 0; i < m->n_disks; i++) {
    base += m->disks[i].base.bytes_done;
    final += m->disks[i].final.bytes_done;
  }
  incr = m->forecast.last_round_bytes;
  return json_pack ("{s:b, s:s, s:s, s:s, s:I, s:{s:I, s:I, s:I}, s:{s:I, s:f, s:f, s:b}, s:o}",
                    "ok", 1, "workdir", workdir, "run_id", m->run.id, "state", state,
                    "incr_rounds", (json_int_t) m->incr_rounds,
                    "bytes", "base", (json_int_t) base, "last_incr", (json_int_t) incr,
                    "final", (json_int_t) final,
                    "forecast", "rounds", (json_int_t) m->forecast.round,
                    "predicted_final_seconds", (double) m->forecast.predicted_final_ms / 1000.0,
                    "actual_final_sync_seconds", (double) m->cutover.final_sync_ms / 1000.0,
                    "ready", m->forecast.ready,
                    "cutover", cutover ? cutover : json_null ());
}

/* Everything before the cleanup: cbt, base, incremental rounds and the
 * cutover. Returns 1 when it stopped at --until ready. */
static int
run_to_cutover (struct v2k_session *s, struct v2k_conn_args *conn, const struct run_opts *o,
                const struct v2k_sync_opts *so, struct v2k_cutover_opts *co, bool bar, FILE *out,
                struct meter *mt, const char **state, json_t **cut, struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  if (m->phases.cbt.state != STEP_DONE &&
      v2k_step_cbt_enable (s, conn->task_timeout > 0 ? conn->task_timeout : 3600, out, err) == -1)
    return -1;
  if (interrupted (err) || base_phase (s, conn, so, bar, out, mt, err) == -1)
    return -1;
  if (m->phases.cutover.state == STEP_PENDING || !m->cutover.powered_off) {
    if (o->max_incr > 0 && incr_rounds (s, conn, o, so, bar, out, mt, err) == -1)
      return -1;
    if (o->until == UNTIL_READY) {
      *state = m->forecast.ready ? "ready" : "not_ready";
      v2k_session_event (s, EV_INFO, NULL, m->forecast.ready ? "run.ready" : "run.not_ready",
                         json_pack ("{s:I, s:I}", "predicted_final_ms",
                                    (json_int_t) m->forecast.predicted_final_ms,
                                    "downtime_target_ms", (json_int_t) m->forecast.downtime_target_ms));
      return 1;
    }
  }
  if (interrupted (err))
    return -1;
  co->verify = o->verify_off ? NULL : &o->verify;
  return v2k_step_cutover (s, conn, co, so, bar, out, cut, err);
}

static int
run_pipeline (struct v2k_session *s, struct v2k_conn_args *conn, const struct run_opts *o,
              const struct v2k_sync_opts *so, struct v2k_cutover_opts *co, bool bar, FILE *out,
              const char **state, json_t **cut, struct v2k_error *err)
{
  struct meter mt = { 0 };
  struct v2k_manifest *m = s->m;
  if (m->phase == PHASE_DONE && m->phases.cleanup.state == STEP_DONE) {
    *state = "done";
    return 0;
  }
  if (m->phase != PHASE_DONE) {
    int r = run_to_cutover (s, conn, o, so, co, bar, out, &mt, state, cut, err);
    if (r != 0)
      return r == 1 ? 0 : -1;
  }
  /* The cleanup phase: done only once it ran (a kill before it leaves it
   * to the next run). */
  v2k_crashpoint ("run:cleanup");
  int stopped, removed;
  if (v2k_step_cleanup (s, conn, co->keep_snapshots, false, &stopped, &removed, err) == -1)
    return -1;
  if (out)
    fprintf (out, "run: cleanup: %d helper process(es) stopped, %d snapshot(s) removed\n",
             stopped, removed);
  *state = "done";
  return 0;
}

static bool
has_manifest (const char *workdir)
{
  CLEANUP_FREE char *p = NULL;
  if (!workdir || asprintf (&p, "%s/%s", workdir, V2K_MANIFEST_FILE) < 0)
    return false;
  return access (p, F_OK) == 0;
}

int
cmd_run (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    V2K_INIT_OPTIONS,
    V2K_SYNC_TUNING_OPTIONS,
    V2K_CUTOVER_OPTIONS,
    { "max-incr", required_argument, NULL, OPT_MAX_INCR },
    { "incr-interval", required_argument, NULL, OPT_INCR_INTERVAL },
    { "downtime-target", required_argument, NULL, OPT_DOWNTIME_TARGET },
    { "until", required_argument, NULL, OPT_UNTIL },
    { "verify", required_argument, NULL, OPT_VERIFY },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  struct v2k_init_opts io;
  struct v2k_sync_opts so;
  struct v2k_cutover_opts co;
  struct run_opts ro = { .max_incr = 6, .incr_interval = 10, .downtime_target = 60,
                         .verify = { .kind = -1 } };
  char *workdir = NULL, *run_id = NULL;
  json_t *cut = NULL;
  int rc = -1, c;
  bool init_given = false;
  v2k_init_opts_init (&io);
  v2k_sync_opts_init (&so);
  v2k_cutover_opts_init (&co);
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    int handled = v2k_conn_getopt (c, optarg, &conn, err);
    if (handled == 0 && (handled = v2k_init_getopt (c, optarg, &io, err)) == 1)
      init_given = true;
    if (handled == 0)
      handled = v2k_sync_getopt (c, optarg, &so, err);
    if (handled == 0)
      handled = v2k_cutover_getopt (c, optarg, &co, err);
    if (handled == -1)
      goto out;
    if (handled)
      continue;
    switch (c) {
    case OPT_MAX_INCR: case OPT_INCR_INTERVAL: case OPT_DOWNTIME_TARGET: case OPT_UNTIL: case OPT_VERIFY:
      if (run_getopt (c, optarg, &ro, err) == -1)
        goto out;
      break;
    case OPT_JSON: g->json = true; break;
    case 'h': run_help (stdout); rc = 0; goto out;
    default: v2k_usage_error (err, "run", "%s", argv[optind - 1]); goto out;
    }
  }
  if (optind != argc) {
    v2k_usage_error (err, "run", "unexpected argument '%s'", argv[optind]);
    goto out;
  }
  if (co.force_poweroff && co.shutdown != SHUTDOWN_GUEST) {
    v2k_error_set (err, V2K_EXIT_USAGE, "run: --force-poweroff belongs to --shutdown guest");
    goto out;
  }
  if (v2k_cutover_define_only_check (&co, "run", err) == -1)
    goto out;
  bool resume = has_manifest (g->workdir);
  if (!resume && v2k_init_check (&io, err) == -1)
    goto out;
  FILE *out = g->json || g->quiet ? NULL : stdout;
  v2k_signals_install ();
  if (resume) {
    if (init_given && out)
      fprintf (out, "run: resuming %s; the init options are ignored\n", g->workdir);
  }
  else {
    if (v2k_step_init (g, &io, &conn, &workdir, &run_id, err) == -1)
      goto out;
    g->workdir = workdir;
    if (out)
      fprintf (out, "run: workdir %s\n", workdir);
  }
  struct v2k_session s;
  const char *state = "failed";
  bool bar = !g->quiet && !g->json && isatty (2);
  if (v2k_session_open (g, "run", true, &conn, &s, err) == 0)
    rc = run_pipeline (&s, &conn, &ro, &so, &co, bar, out, &state, &cut, err);
  if (rc == 0) {
    json_t *sum = run_summary (s.m, s.workdir, state, json_incref (cut));
    if (g->json) {
      json_dumpf (sum, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
      fputc ('\n', stdout);
    }
    else if (out && strcmp (state, "done") == 0)
      fprintf (out, "run: done (%lld incremental rounds; final sync predicted %.1f s, took %.1f s)\n",
               (long long) s.m->incr_rounds, (double) s.m->forecast.predicted_final_ms / 1000.0,
               (double) s.m->cutover.final_sync_ms / 1000.0);
    else if (out)
      fprintf (out, "run: %s (%lld incremental rounds; final sync predicted %.1f s, target %lld s)%s\n",
               state, (long long) s.m->incr_rounds, (double) s.m->forecast.predicted_final_ms / 1000.0,
               (long long) ro.downtime_target,
               strcmp (state, "ready") == 0 ? "; run again to cut over" : "");
    json_decref (sum);
  }
  v2k_session_close (&s, rc, err);
 out:
  json_decref (cut);
  v2k_init_opts_free (&io);
  v2k_cutover_opts_free (&co);
  v2k_conn_args_free (&conn);
  free (workdir);
  free (run_id);
  return rc == 0 ? 0 : err->code ? err->code : V2K_EXIT_INTERNAL;
}
