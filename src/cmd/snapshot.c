/* snapshot base|incr|final: take the migration snapshot and record its
 * moref and each disk's changeId and backing from the snapshot's own config.
 * A snapshot taken before a crash is found by its name and adopted. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cmd.h"
#include "session.h"
#include "../util/cleanup.h"
#include "../util/crashpoint.h"
#include "../util/fsutil.h"
#include "../vsphere/propcoll.h"
#include "../vsphere/snapshot.h"

static void
snapshot_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR snapshot base|incr|final [--name N] [--quiesce]\n"
           "                     [--allow-running] [connection options]\n"
           "\n"
           "Creates a snapshot (without memory) for the next sync and records its moref\n"
           "and every disk's changeId. The default name is\n"
           "ablestack-v2k-<run_id>-<kind>-<seq>. A snapshot left unrecorded by a crash is\n"
           "found by that name and adopted, never taken twice.\n"
           "'incr' needs a completed base sync; 'final' needs the VM powered off unless\n"
           "--allow-running.\n"
           "\n"
           "  --name N          snapshot name\n"
           "  --quiesce         quiesce the guest file systems (needs VMware Tools)\n"
           "  --allow-running   allow 'final' while the VM is powered on\n"
           "  --json            print the snapshot as JSON\n"
           "  -h, --help\n"
           "\n" V2K_CONN_HELP);
}

enum { OPT_NAME = OPT_CONN_LAST, OPT_QUIESCE, OPT_ALLOW_RUNNING, OPT_JSON };

/* The latest snapshot of KIND that is still on vCenter and whose sync has
 * not finished on every disk, or NULL. */
static const struct v2k_snapshot *
unsynced_snapshot (struct v2k_manifest *m, int kind)
{
  for (size_t i = m->n_snapshots; i-- > 0; ) {
    const struct v2k_snapshot *s = &m->snapshots[i];
    if (s->kind != kind || s->removed)
      continue;
    for (size_t d = 0; d < m->n_disks; d++) {
      const struct v2k_sync *sy = v2k_disk_sync (&m->disks[d], kind);
      if (sy->state != STEP_DONE || !sy->snapshot || strcmp (sy->snapshot, s->moref) != 0)
        return s;
    }
    return NULL;
  }
  return NULL;
}

static int
check_allowed (struct v2k_session *s, int kind, bool allow_running, struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  const struct v2k_snapshot *pending = unsynced_snapshot (m, kind);
  if (pending) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "snapshot %s (%s) of this run has not been synced yet; run 'sync %s' first",
                   pending->moref, pending->name, v2k_snapshot_kind_names[kind]);
    return -1;
  }
  if (kind != SNAP_BASE) {
    for (size_t d = 0; d < m->n_disks; d++)
      if (m->disks[d].base.state != STEP_DONE) {
        v2k_error_set (err, V2K_EXIT_USAGE,
                       "snapshot %s is refused until the base sync has completed (disk %s is %s)",
                       v2k_snapshot_kind_names[kind], m->disks[d].id,
                       v2k_step_state_names[m->disks[d].base.state]);
        return -1;
      }
  }
  if (kind == SNAP_FINAL && !allow_running) {
    static const char *const paths[] = { "runtime.powerState", NULL };
    struct v2k_pc_result res = { 0 };
    if (v2k_pc_get (s->soap, "VirtualMachine", m->source.vm.moref, paths, &res, err) == -1)
      return -1;
    CLEANUP_FREE char *state = res.nobjs ? v2k_pc_prop_text (&res.objs[0], "runtime.powerState") : NULL;
    v2k_pc_result_free (&res);
    if (!state || strcmp (state, "poweredOff") != 0) {
      v2k_error_set (err, V2K_EXIT_USAGE,
                     "snapshot final needs VM %s powered off (it is %s): shut it down first, "
                     "or pass --allow-running", m->source.vm.name, state ? state : "unknown");
      return -1;
    }
  }
  return 0;
}

static json_t *
snapshot_json (const struct v2k_snapshot *snap, const struct v2k_manifest *m)
{
  json_t *disks = json_array ();
  for (size_t i = 0; i < snap->n_disks; i++) {
    const char *id = "";
    for (size_t d = 0; d < m->n_disks; d++)
      if (m->disks[d].key == snap->disks[i].key)
        id = m->disks[d].id;
    json_array_append_new (disks, json_pack ("{s:s, s:I, s:o, s:s}", "id", id,
                                             "key", (json_int_t) snap->disks[i].key,
                                             "change_id", snap->disks[i].change_id
                                             ? json_string (snap->disks[i].change_id) : json_null (),
                                             "file_name", snap->disks[i].file_name));
  }
  return json_pack ("{s:s, s:s, s:s, s:I, s:o}", "moref", snap->moref, "name", snap->name,
                    "kind", v2k_snapshot_kind_names[snap->kind], "seq", (json_int_t) snap->seq,
                    "disks", disks);
}

/* vCenter reports a running task's percentage: log it as an event. */
static void
snapshot_progress (void *opaque, const char *task, int percent)
{
  v2k_session_event (opaque, EV_INFO, NULL, "snapshot.progress",
                     json_pack ("{s:s, s:i}", "task", task, "percent", percent));
}

int
cmd_snapshot (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    { "name", required_argument, NULL, OPT_NAME },
    { "quiesce", no_argument, NULL, OPT_QUIESCE },
    { "allow-running", no_argument, NULL, OPT_ALLOW_RUNNING },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  const char *name = NULL;
  bool quiesce = false, allow_running = false;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
    int handled = v2k_conn_getopt (c, optarg, &conn, err);
    if (handled == -1)
      return err->code;
    if (handled)
      continue;
    switch (c) {
    case OPT_NAME: name = optarg; break;
    case OPT_QUIESCE: quiesce = true; break;
    case OPT_ALLOW_RUNNING: allow_running = true; break;
    case OPT_JSON: g->json = true; break;
    case 'h': snapshot_help (stdout); return 0;
    default: return v2k_usage_error (err, "snapshot", "%s", argv[optind - 1]);
    }
  }
  if (optind + 1 != argc)
    return v2k_usage_error (err, "snapshot", "want exactly one of base, incr, final");
  int kind = jm_enum_index (v2k_snapshot_kind_names, argv[optind]);
  if (kind < 0)
    return v2k_usage_error (err, "snapshot", "'%s' is not base, incr or final", argv[optind]);
  if (name && !*name)
    return v2k_usage_error (err, "snapshot", "--name must not be empty");

  struct v2k_session s;
  int rc = -1;
  CLEANUP_FREE char *moref = NULL, *default_name = NULL;
  if (v2k_session_open (g, "snapshot", true, &conn, &s, err) == -1)
    goto out;
  struct v2k_manifest *m = s.m;
  int phase = kind == SNAP_BASE ? PHASE_SNAPSHOT_BASE : kind == SNAP_INCR ? PHASE_SNAPSHOT_INCR
    : PHASE_SNAPSHOT_FINAL;
  s.phase = phase;
  if (check_allowed (&s, kind, allow_running, err) == -1)
    goto out;
  int64_t seq = (int64_t) m->n_snapshots + 1;
  if (!name) {
    if (asprintf (&default_name, "ablestack-v2k-%s-%s-%lld", m->run.id,
                  v2k_snapshot_kind_names[kind], (long long) seq) < 0) {
      default_name = NULL;
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      goto out;
    }
    name = default_name;
  }
  v2k_session_step (&s, phase, STEP_RUNNING);
  if (v2k_session_save (&s, err) == -1)
    goto out;

  bool adopted = false;
  long long task_timeout = conn.task_timeout > 0 ? conn.task_timeout : 3600;
  if (v2k_snapshot_find (s.soap, m->source.vm.moref, name, &moref, err) == -1)
    goto out;
  if (moref)
    adopted = true;
  else {
    if (v2k_snapshot_create (s.soap, m->source.vm.moref, name, quiesce, (int) task_timeout,
                             snapshot_progress, &s, &moref, err) == -1)
      goto out;
    v2k_crashpoint ("snapshot:created");
  }

  struct v2k_snapshot *arr = realloc (m->snapshots, (m->n_snapshots + 1) * sizeof *arr);
  if (!arr) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    goto out;
  }
  m->snapshots = arr;
  struct v2k_snapshot *snap = &arr[m->n_snapshots];
  memset (snap, 0, sizeof *snap);
  char now[32];
  v2k_now_rfc3339 (now);
  snap->moref = strdup (moref);
  snap->name = strdup (name);
  snap->kind = kind;
  snap->seq = seq;
  snap->created = strdup (now);
  m->n_snapshots++;
  if (v2k_snapshot_read_disks (s.soap, moref, m, snap, err) == -1)
    goto out;
  v2k_session_step (&s, phase, STEP_DONE);
  if (v2k_session_save (&s, err) == -1)
    goto out;
  json_t *sj = snapshot_json (snap, m);
  v2k_session_event (&s, EV_INFO, NULL, adopted ? "snapshot.adopted" : "snapshot.created",
                     json_incref (sj));
  if (g->json) {
    json_object_set_new (sj, "ok", json_true ());
    json_object_set_new (sj, "adopted", json_boolean (adopted));
    json_dumpf (sj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
  }
  else
    printf ("%s %s%s\n", moref, name, adopted ? " (adopted after an interrupted run)" : "");
  json_decref (sj);
  rc = 0;
 out:
  v2k_session_close (&s, rc, err);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
