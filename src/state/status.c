#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "events.h"
#include "lock.h"
#include "manifest.h"

static json_t *
optstr (const char *s)
{
  return s ? json_string (s) : json_null ();
}

/* The sync record that the current phase is about. */
static const char *
current_sync_name (int phase)
{
  switch (phase) {
  case PHASE_SNAPSHOT_INCR: case PHASE_SYNC_INCR:
    return "incr";
  case PHASE_SNAPSHOT_FINAL: case PHASE_SYNC_FINAL: case PHASE_CUTOVER: case PHASE_DONE:
    return "final";
  default:
    return "base";
  }
}

static json_t *
sync_json (const struct v2k_sync *s, bool running)
{
  json_t *eta = json_null ();
  if (running && s->state == STEP_RUNNING && s->rate_bps > 0 && s->bytes_total >= s->bytes_done)
    eta = json_integer ((s->bytes_total - s->bytes_done + s->rate_bps - 1) / s->rate_bps);
  return json_pack ("{s:s, s:o, s:I, s:I, s:o, s:o, s:o, s:o}",
                    "state", v2k_step_state_names[s->state],
                    "change_id", optstr (s->change_id),
                    "bytes_total", (json_int_t) s->bytes_total,
                    "bytes_done", (json_int_t) s->bytes_done,
                    "rate_bps", s->rate_bps > 0 ? json_integer (s->rate_bps) : json_null (),
                    "eta_seconds", eta,
                    "started", optstr (s->started),
                    "finished", optstr (s->finished));
}

static json_t *
disk_json (const struct v2k_disk *d, const char *current, bool running)
{
  const struct v2k_sync *cur = strcmp (current, "incr") == 0 ? &d->incr
    : strcmp (current, "final") == 0 ? &d->final : &d->base;
  json_t *j = json_pack ("{s:s, s:I, s:o, s:I, s:s, s:{s:b, s:o}, s:s}",
                         "id", d->id, "key", (json_int_t) d->key, "label", optstr (d->label),
                         "capacity", (json_int_t) d->capacity, "target_path", d->target_path,
                         "cbt", "enabled", d->cbt.enabled, "change_id", optstr (d->cbt.change_id),
                         "sync", current);
  json_t *cur_j = sync_json (cur, running);
  json_object_set (j, "state", json_object_get (cur_j, "state"));
  json_object_set (j, "bytes_total", json_object_get (cur_j, "bytes_total"));
  json_object_set (j, "bytes_done", json_object_get (cur_j, "bytes_done"));
  json_object_set (j, "rate_bps", json_object_get (cur_j, "rate_bps"));
  json_object_set (j, "eta_seconds", json_object_get (cur_j, "eta_seconds"));
  json_decref (cur_j);
  json_object_set_new (j, "syncs", json_pack ("{s:o, s:o, s:o}",
                                              "base", sync_json (&d->base, running),
                                              "incr", sync_json (&d->incr, running),
                                              "final", sync_json (&d->final, running)));
  json_object_set_new (j, "counters", json_pack ("{s:I, s:I, s:I, s:I}",
                                                 "bytes_copied", (json_int_t) d->counters.bytes_copied,
                                                 "bytes_zeroed", (json_int_t) d->counters.bytes_zeroed,
                                                 "areas", (json_int_t) d->counters.areas,
                                                 "syncs", (json_int_t) d->counters.syncs));
  json_object_set_new (j, "last_error", v2k_error_record_json (d->last_error));
  return j;
}

json_t *
v2k_status_build (const char *workdir, size_t nevents, struct v2k_error *err)
{
  struct v2k_manifest *m = v2k_manifest_load (workdir, err);
  if (!m)
    return NULL;
  json_t *events = v2k_events_tail (workdir, nevents, err);
  if (!events) {
    v2k_manifest_free (m);
    return NULL;
  }
  struct v2k_lock_holder holder;
  bool running = v2k_lock_probe (workdir, &holder) == 1;
  /* ready: run --until ready stopped with a prediction that meets the
   * target, and nothing failed or started the cutover since. */
  bool ready = m->forecast.ready && m->phase < PHASE_CUTOVER && !m->last_error;
  const char *state = running ? "running"
    : m->phase == PHASE_DONE ? "done"
    : m->last_error ? "failed" : ready ? "ready" : "idle";

  const char *current = current_sync_name (m->phase);
  json_t *disks = json_array ();
  json_int_t total = 0, done = 0;
  for (size_t i = 0; i < m->n_disks; i++) {
    json_t *dj = disk_json (&m->disks[i], current, running);
    total += json_integer_value (json_object_get (dj, "bytes_total"));
    done += json_integer_value (json_object_get (dj, "bytes_done"));
    json_array_append_new (disks, dj);
  }
  size_t live_snapshots = 0;
  for (size_t i = 0; i < m->n_snapshots; i++)
    live_snapshots += !m->snapshots[i].removed;

  json_t *j = json_pack ("{s:b, s:s, s:s, s:s, s:{s:s, s:s, s:o}, s:s, s:s, s:o, s:o, s:o, s:I, s:I}",
                         "ok", 1, "schema", V2K_STATUS_SCHEMA, "run_id", m->run.id,
                         "workdir", workdir,
                         "vm", "name", m->source.vm.name, "moref", m->source.vm.moref,
                         "vcenter", optstr (m->source.vcenter.url),
                         "phase", v2k_phase_names[m->phase], "state", state,
                         "pid", running && holder.pid > 0 ? json_integer (holder.pid) : json_null (),
                         "command", running && holder.command[0] ? json_string (holder.command) : json_null (),
                         "since", running && holder.since[0] ? json_string (holder.since) : json_null (),
                         "incr_rounds", (json_int_t) m->incr_rounds,
                         "snapshots", (json_int_t) live_snapshots);
  json_object_set_new (j, "phase_state",
                       json_string (v2k_manifest_step (m, m->phase)
                                    ? v2k_step_state_names[v2k_manifest_step (m, m->phase)->state]
                                    : "done"));
  json_object_set_new (j, "totals", json_pack ("{s:I, s:I}", "bytes_total", total, "bytes_done", done));
  json_object_set_new (j, "disks", disks);
  const struct v2k_forecast *f = &m->forecast;
  json_object_set_new (j, "round", json_integer (f->round));
  json_object_set_new (j, "predicted_downtime_seconds",
                       f->round ? json_real ((double) f->predicted_final_ms / 1000.0) : json_null ());
  json_object_set_new (j, "ready_for_cutover", json_boolean (ready));
  json_object_set_new (j, "forecast",
                       json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:o}",
                                  "round", (json_int_t) f->round,
                                  "last_round_bytes", (json_int_t) f->last_round_bytes,
                                  "rate_bps", (json_int_t) f->rate_bps,
                                  "snapshot_ms", (json_int_t) f->snapshot_ms,
                                  "predicted_final_ms", (json_int_t) f->predicted_final_ms,
                                  "downtime_target_ms", (json_int_t) f->downtime_target_ms,
                                  "ready", f->ready, "decided", optstr (f->decided)));
  const struct v2k_cutover_record *cr = &m->cutover;
  const struct v2k_libvirt_plan *lv = &m->target.libvirt;
  json_object_set_new (j, "cutover",
                       json_pack ("{s:o, s:o, s:I, s:I, s:b, s:b, s:b, s:{s:o, s:o, s:o, s:o}}",
                                  "shutdown", optstr (cr->shutdown),
                                  "powered_off", optstr (cr->powered_off),
                                  "shutdown_ms", (json_int_t) cr->shutdown_ms,
                                  "final_sync_ms", (json_int_t) cr->final_sync_ms,
                                  "defined", cr->defined, "started", cr->started,
                                  "snapshots_removed", cr->snapshots_removed,
                                  "domain", "name", optstr (lv->domain_name), "uuid", optstr (lv->domain_uuid),
                                  "uri", optstr (lv->uri), "xml", optstr (lv->xml_path)));
  const struct v2k_cloud_record *cl = &m->cloud;
  json_t *cvols = json_array ();
  for (size_t i = 0; i < cl->n_volumes; i++)
    json_array_append_new (cvols, json_pack ("{s:s, s:o, s:b}", "disk", cl->volumes[i].disk,
                                             "volume_id", optstr (cl->volumes[i].volume_id),
                                             "attached", cl->volumes[i].attached || i == 0));
  json_object_set_new (j, "cloud",
                       json_pack ("{s:o, s:o, s:o, s:o, s:o, s:b, s:b, s:o}",
                                  "endpoint", optstr (cl->endpoint), "flavour", optstr (cl->flavour),
                                  "step", optstr (cl->step), "vm_id", optstr (cl->vm_id),
                                  "vm_name", optstr (cl->vm_name), "started", cl->started,
                                  "rolled_back", cl->rolled_back, "volumes", cvols));
  json_object_set_new (j, "conversion",
                       json_pack ("{s:s, s:b, s:b, s:o}", "state", v2k_step_state_names[m->conversion.state],
                                  "converted", m->conversion.converted, "virtio", m->conversion.virtio,
                                  "fallback", optstr (m->conversion.fallback)));
  json_object_set_new (j, "last_error", v2k_error_record_json (m->last_error));
  json_object_set_new (j, "events", events);
  v2k_manifest_free (m);
  return j;
}

static const char *
jstr (const json_t *obj, const char *key)
{
  const char *s = json_string_value (json_object_get (obj, key));
  return s ? s : "-";
}

static void
human_bytes (char *buf, size_t len, json_int_t n)
{
  const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double v = (double) n;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  snprintf (buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void
v2k_status_print_text (FILE *out, const json_t *s)
{
  const json_t *vm = json_object_get (s, "vm");
  fprintf (out, "VM:       %s (%s) on %s\n", jstr (vm, "name"), jstr (vm, "moref"), jstr (vm, "vcenter"));
  fprintf (out, "Run:      %s in %s\n", jstr (s, "run_id"), jstr (s, "workdir"));
  fprintf (out, "Phase:    %s (%s)", jstr (s, "phase"), jstr (s, "phase_state"));
  if (strcmp (jstr (s, "state"), "running") == 0)
    fprintf (out, ", running as pid %lld: ablestack_v2k %s since %s",
             (long long) json_integer_value (json_object_get (s, "pid")), jstr (s, "command"),
             jstr (s, "since"));
  else if (strcmp (jstr (s, "phase_state"), "running") == 0)
    fprintf (out, ", interrupted: no process holds the workdir; re-run the step to resume");
  else
    fprintf (out, ", %s", jstr (s, "state"));
  fprintf (out, "\nRounds:   %lld incremental; %lld migration snapshot(s) on vCenter\n",
           (long long) json_integer_value (json_object_get (s, "incr_rounds")),
           (long long) json_integer_value (json_object_get (s, "snapshots")));
  fprintf (out, "Disks:\n");
  size_t i;
  json_t *d;
  json_array_foreach (json_object_get (s, "disks"), i, d) {
    char cap[32], done[32], total[32];
    human_bytes (cap, sizeof cap, json_integer_value (json_object_get (d, "capacity")));
    json_int_t t = json_integer_value (json_object_get (d, "bytes_total"));
    json_int_t dn = json_integer_value (json_object_get (d, "bytes_done"));
    human_bytes (done, sizeof done, dn);
    human_bytes (total, sizeof total, t);
    fprintf (out, "  %-9s %-12s %10s  %s %-8s %s / %s", jstr (d, "id"), jstr (d, "label"), cap,
             jstr (d, "sync"), jstr (d, "state"), done, total);
    if (t > 0)
      fprintf (out, " (%lld%%)", (long long) (dn * 100 / t));
    json_t *rate = json_object_get (d, "rate_bps");
    if (json_is_integer (rate)) {
      char r[32];
      human_bytes (r, sizeof r, json_integer_value (rate));
      fprintf (out, "  %s/s", r);
    }
    json_t *eta = json_object_get (d, "eta_seconds");
    if (json_is_integer (eta))
      fprintf (out, "  ETA %llds", (long long) json_integer_value (eta));
    fprintf (out, "\n");
    const json_t *cbt = json_object_get (d, "cbt");
    fprintf (out, "            CBT %s, changeId %s\n",
             json_is_true (json_object_get (cbt, "enabled")) ? "on" : "off", jstr (cbt, "change_id"));
    const json_t *derr = json_object_get (d, "last_error");
    if (json_is_object (derr))
      fprintf (out, "            error: %s\n", jstr (derr, "message"));
  }
  const json_t *err = json_object_get (s, "last_error");
  if (json_is_object (err))
    fprintf (out, "Last error: [%s] %s (%s, %s)\n", jstr (err, "code"), jstr (err, "message"),
             jstr (err, "phase"), jstr (err, "time"));
  const json_t *events = json_object_get (s, "events");
  if (json_array_size (events) > 0) {
    fprintf (out, "Recent events:\n");
    json_t *e;
    json_array_foreach (events, i, e) {
      fprintf (out, "  %s %-5s %-14s %s", jstr (e, "ts"), jstr (e, "level"), jstr (e, "phase"),
               jstr (e, "event"));
      if (json_is_string (json_object_get (e, "disk")))
        fprintf (out, " [%s]", jstr (e, "disk"));
      fprintf (out, "\n");
    }
  }
}
