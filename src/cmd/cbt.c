/* cbt enable|status|reset|areas: Changed Block Tracking of the VM. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cmd.h"
#include "session.h"
#include "steps.h"
#include "../util/cleanup.h"
#include "../vsphere/cbt.h"
#include "../vsphere/propcoll.h"
#include "../vsphere/snapshot.h"
#include "../util/getopt.h"

static void
cbt_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR cbt enable [connection options]\n"
           "       ablestack_v2k --workdir DIR cbt status [--json] [connection options]\n"
           "       ablestack_v2k --workdir DIR cbt reset [--force] [connection options]\n"
           "       ablestack_v2k --workdir DIR cbt areas --snapshot base|incr|final --disk ID\n"
           "                     [--since CHANGEID|*] [--json] [connection options]\n"
           "\n"
           "enable   turns on changeTrackingEnabled (ReconfigVM_Task) and reads it back.\n"
           "         On a powered-on VM, tracking starts at the next stun: the base snapshot.\n"
           "status   the live view: changeTrackingEnabled and each disk's changeId.\n"
           "reset    disables and re-enables tracking (a snapshot is created and removed to\n"
           "         apply it on a running VM). Refused during an unfinished sync unless\n"
           "         --force. Afterwards run 'sync base --full'.\n"
           "areas    the changed areas of a disk at this run's latest snapshot of a kind,\n"
           "         since CHANGEID (default: the disk's last committed changeId, or '*').\n"
           "\n" V2K_CONN_HELP);
}

enum { OPT_JSON = OPT_CONN_LAST, OPT_FORCE, OPT_SNAPSHOT, OPT_DISK, OPT_SINCE };

static char *
power_state (struct v2k_session *s, struct v2k_error *err)
{
  static const char *const paths[] = { "runtime.powerState", NULL };
  struct v2k_pc_result res = { 0 };
  if (v2k_pc_get (s->soap, "VirtualMachine", s->m->source.vm.moref, paths, &res, err) == -1)
    return NULL;
  char *st = res.nobjs ? v2k_pc_prop_text (&res.objs[0], "runtime.powerState") : NULL;
  v2k_pc_result_free (&res);
  if (!st)
    st = strdup ("unknown");
  return st;
}

static int
cbt_status (struct v2k_session *s, bool json, struct v2k_error *err)
{
  static const char *const paths[] = { "config.changeTrackingEnabled", "config.hardware.device", NULL };
  struct v2k_pc_result res = { 0 };
  if (v2k_pc_get (s->soap, "VirtualMachine", s->m->source.vm.moref, paths, &res, err) == -1)
    return -1;
  CLEANUP_FREE char *enabled = res.nobjs ? v2k_pc_prop_text (&res.objs[0], "config.changeTrackingEnabled") : NULL;
  xmlNode *devices = res.nobjs ? v2k_pc_prop (&res.objs[0], "config.hardware.device") : NULL;
  json_t *disks = json_array ();
  for (size_t i = 0; i < s->m->n_disks; i++) {
    const struct v2k_disk *d = &s->m->disks[i];
    char *live = NULL;
    for (xmlNode *n = v2k_xml_child (devices, NULL); n; n = v2k_xml_next (n)) {
      int64_t key;
      if (v2k_xml_type_is (n, "VirtualDisk") && v2k_xml_child_int64 (n, "key", &key) == 0 && key == d->key)
        live = v2k_xml_child_text (v2k_xml_child (n, "backing"), "changeId");
    }
    json_array_append_new (disks, json_pack ("{s:s, s:I, s:o, s:o}", "id", d->id,
                                             "key", (json_int_t) d->key,
                                             "change_id", live && *live ? json_string (live) : json_null (),
                                             "committed_change_id", d->cbt.change_id
                                             ? json_string (d->cbt.change_id) : json_null ()));
    free (live);
  }
  v2k_pc_result_free (&res);
  bool on = enabled && strcmp (enabled, "true") == 0;
  json_t *out = json_pack ("{s:b, s:s, s:s, s:b, s:o}", "ok", 1, "vm", s->m->source.vm.name,
                           "moref", s->m->source.vm.moref, "enabled", on, "disks", disks);
  if (json) {
    json_dumpf (out, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
  }
  else {
    printf ("CBT on %s (%s): %s\n", s->m->source.vm.name, s->m->source.vm.moref, on ? "enabled" : "disabled");
    size_t i;
    json_t *d;
    json_array_foreach (disks, i, d) {
      const char *live = json_string_value (json_object_get (d, "change_id"));
      const char *committed = json_string_value (json_object_get (d, "committed_change_id"));
      printf ("  %-9s changeId %s; committed in the target: %s\n",
              json_string_value (json_object_get (d, "id")), live ? live : "-",
              committed ? committed : "-");
    }
  }
  json_decref (out);
  return 0;
}

static bool
sync_unfinished (const struct v2k_manifest *m)
{
  for (size_t i = 0; i < m->n_disks; i++) {
    const struct v2k_disk *d = &m->disks[i];
    if (d->base.state == STEP_RUNNING || d->incr.state == STEP_RUNNING || d->final.state == STEP_RUNNING ||
        d->base.state == STEP_FAILED || d->incr.state == STEP_FAILED || d->final.state == STEP_FAILED)
      return true;
  }
  return false;
}

static int
cbt_reset (struct v2k_session *s, bool force, long task_timeout, struct v2k_error *err)
{
  if (sync_unfinished (s->m) && !force) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "a sync of this run is unfinished; resetting CBT now discards its tracking. "
                   "Finish or re-run the sync first, or pass --force");
    return -1;
  }
  const char *vm = s->m->source.vm.moref;
  CLEANUP_FREE char *state = power_state (s, err);
  if (!state || v2k_cbt_set (s->soap, vm, false, (int) task_timeout, err) == -1 ||
      v2k_cbt_set (s->soap, vm, true, (int) task_timeout, err) == -1)
    return -1;
  if (strcmp (state, "poweredOn") == 0) {
    /* A running VM applies the change at its next stun: make one now. */
    CLEANUP_FREE char *name = NULL, *snap = NULL;
    if (asprintf (&name, "ablestack-v2k-%s-cbt-reset", s->m->run.id) < 0)
      name = NULL;
    if (!name || v2k_snapshot_create (s->soap, vm, name, false, (int) task_timeout, NULL, NULL, &snap, err) == -1 ||
        v2k_snapshot_remove (s->soap, snap, (int) task_timeout, err) == -1)
      return -1;
  }
  for (size_t i = 0; i < s->m->n_disks; i++) {
    free (s->m->disks[i].cbt.change_id);
    s->m->disks[i].cbt.change_id = NULL;
    s->m->disks[i].cbt.enabled = true;
  }
  if (v2k_session_save (s, err) == -1)
    return -1;
  v2k_session_event (s, EV_WARN, NULL, "cbt.reset",
                     json_pack ("{s:s, s:b}", "next", "sync base --full", "forced", force));
  printf ("CBT reset on %s; now run 'sync base --full'\n", s->m->source.vm.name);
  return 0;
}

static int
cbt_areas (struct v2k_session *s, const char *kind_name, const char *disk_id, const char *since,
           bool json, struct v2k_error *err)
{
  int kind = kind_name ? jm_enum_index (v2k_snapshot_kind_names, kind_name) : -1;
  if (kind < 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "cbt areas needs --snapshot base|incr|final");
    return -1;
  }
  const struct v2k_disk *d = NULL;
  for (size_t i = 0; disk_id && i < s->m->n_disks; i++)
    if (strcmp (s->m->disks[i].id, disk_id) == 0)
      d = &s->m->disks[i];
  if (!d) {
    v2k_error_set (err, V2K_EXIT_USAGE, "cbt areas needs --disk ID, one of this VM's disks (e.g. %s)",
                   s->m->n_disks ? s->m->disks[0].id : "scsi0:0");
    return -1;
  }
  const struct v2k_snapshot *snap = NULL;
  for (size_t i = 0; i < s->m->n_snapshots; i++)
    if (s->m->snapshots[i].kind == kind && !s->m->snapshots[i].removed)
      snap = &s->m->snapshots[i];
  if (!snap) {
    v2k_error_set (err, V2K_EXIT_USAGE, "this run has no %s snapshot on vCenter; take one with 'snapshot %s'",
                   kind_name, kind_name);
    return -1;
  }
  if (!since)
    since = d->cbt.change_id ? d->cbt.change_id : "*";
  /* The snapshot's own changeId tells a reset epoch before vSphere does. */
  for (size_t i = 0; i < snap->n_disks; i++)
    if (snap->disks[i].key == d->key && snap->disks[i].change_id && strcmp (since, "*") != 0 &&
        !v2k_change_id_same_epoch (since, snap->disks[i].change_id)) {
      v2k_error_set (err, V2K_EXIT_CBT,
                     "disk %s: changeId \"%s\" is from another tracking epoch than snapshot %s "
                     "(\"%s\"): change tracking was reset. Recover with 'cbt reset', then "
                     "'sync base --full'", d->id, since, snap->moref, snap->disks[i].change_id);
      return -1;
    }
  v2k_extents areas = empty_vector;
  int pages = 0;
  if (v2k_changed_areas_query (s->soap, s->m->source.vm.moref, snap->moref, d->key, d->capacity,
                               since, &areas, &pages, err) == -1) {
    v2k_extents_reset (&areas);
    return -1;
  }
  int64_t bytes = v2k_extents_bytes (&areas);
  if (json) {
    json_t *arr = json_array ();
    for (size_t i = 0; i < areas.len; i++)
      json_array_append_new (arr, json_pack ("{s:I, s:I}", "start", (json_int_t) areas.ptr[i].start,
                                             "length", (json_int_t) areas.ptr[i].length));
    json_t *out = json_pack ("{s:b, s:s, s:s, s:s, s:I, s:i, s:I, s:I, s:o}", "ok", 1, "disk", d->id,
                             "snapshot", snap->moref, "since", since, "capacity", (json_int_t) d->capacity,
                             "pages", pages, "count", (json_int_t) areas.len, "bytes", (json_int_t) bytes,
                             "areas", arr);
    json_dumpf (out, stdout, JSON_COMPACT);
    fputc ('\n', stdout);
    json_decref (out);
  }
  else {
    for (size_t i = 0; i < areas.len; i++)
      printf ("%lld %lld\n", (long long) areas.ptr[i].start, (long long) areas.ptr[i].length);
    printf ("# disk %s at %s since %s: %zu areas, %lld bytes (%.1f%% of %lld) in %d replies\n",
            d->id, snap->moref, since, areas.len, (long long) bytes,
            d->capacity ? 100.0 * (double) bytes / (double) d->capacity : 0.0,
            (long long) d->capacity, pages);
  }
  v2k_extents_reset (&areas);
  return 0;
}

int
cmd_cbt (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    { "json", no_argument, NULL, OPT_JSON },
    { "force", no_argument, NULL, OPT_FORCE },
    { "snapshot", required_argument, NULL, OPT_SNAPSHOT },
    { "disk", required_argument, NULL, OPT_DISK },
    { "since", required_argument, NULL, OPT_SINCE },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  bool force = false;
  const char *snapshot = NULL, *disk = NULL, *since = NULL;
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
    case OPT_JSON: g->json = true; break;
    case OPT_FORCE: force = true; break;
    case OPT_SNAPSHOT: snapshot = optarg; break;
    case OPT_DISK: disk = optarg; break;
    case OPT_SINCE: since = optarg; break;
    case 'h': cbt_help (stdout); return 0;
    default: return v2k_usage_error (err, "cbt", "%s", argv[optind - 1]);
    }
  }
  if (optind + 1 != argc)
    return v2k_usage_error (err, "cbt", "want one of enable, status, reset, areas");
  const char *sub = argv[optind];
  bool writes = strcmp (sub, "enable") == 0 || strcmp (sub, "reset") == 0;
  if (!writes && strcmp (sub, "status") != 0 && strcmp (sub, "areas") != 0)
    return v2k_usage_error (err, "cbt", "'%s' is not enable, status, reset or areas", sub);
  if (strcmp (sub, "areas") != 0 && (snapshot || disk || since))
    return v2k_usage_error (err, "cbt", "--snapshot, --disk and --since belong to 'cbt areas'");
  if (force && strcmp (sub, "reset") != 0)
    return v2k_usage_error (err, "cbt", "--force belongs to 'cbt reset'");

  struct v2k_session s;
  int rc = -1;
  char command[32];
  snprintf (command, sizeof command, "cbt %s", sub);
  long task_timeout = conn.task_timeout > 0 ? conn.task_timeout : 3600;
  if (v2k_session_open (g, command, writes, &conn, &s, err) == 0) {
    if (strcmp (sub, "enable") == 0)
      rc = v2k_step_cbt_enable (&s, task_timeout, stdout, err);
    else if (strcmp (sub, "reset") == 0)
      rc = cbt_reset (&s, force, task_timeout, err);
    else if (strcmp (sub, "status") == 0)
      rc = cbt_status (&s, g->json, err);
    else
      rc = cbt_areas (&s, snapshot, disk, since, g->json, err);
  }
  v2k_session_close (&s, rc, err);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
