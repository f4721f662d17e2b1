#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "steps.h"
#include "../transfer/server.h"
#include "../transfer/source.h"
#include "../transfer/sync.h"
#include "../transfer/target.h"
#include "../transfer/verify.h"
#include "../util/cleanup.h"
#include "../util/crashpoint.h"
#include "../util/fsutil.h"
#include "../util/signals.h"
#include "../util/units.h"
#include "../vsphere/cbt.h"
#include "../vsphere/power.h"
#include "../vsphere/propcoll.h"
#include "../vsphere/snapshot.h"

/* ---- cbt enable ---- */

int
v2k_step_cbt_enable (struct v2k_session *s, long task_timeout, FILE *out, struct v2k_error *err)
{
  v2k_session_step (s, PHASE_CBT, STEP_RUNNING);
  if (v2k_session_save (s, err) == -1 ||
      v2k_cbt_set (s->soap, s->m->source.vm.moref, true, (int) task_timeout, err) == -1)
    return -1;
  struct v2k_power p;
  if (v2k_power_read (s->soap, s->m->source.vm.moref, &p, err) == -1)
    return -1;
  for (size_t i = 0; i < s->m->n_disks; i++)
    s->m->disks[i].cbt.enabled = true;
  v2k_session_step (s, PHASE_CBT, STEP_DONE);
  if (v2k_session_save (s, err) == -1) {
    v2k_power_free (&p);
    return -1;
  }
  bool on = strcmp (p.state, "poweredOn") == 0;
  v2k_session_event (s, EV_INFO, NULL, "cbt.enabled",
                     json_pack ("{s:s, s:s}", "power_state", p.state, "tracking_starts",
                                on ? "at the next stun (the base snapshot)" : "now"));
  if (out)
    fprintf (out, "CBT enabled on %s%s\n", s->m->source.vm.name,
             on ? "; tracking starts at the next stun (the base snapshot)" : "");
  v2k_power_free (&p);
  return 0;
}

/* ---- snapshot ---- */

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
snapshot_allowed (struct v2k_session *s, int kind, bool allow_running, struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
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
    struct v2k_power p;
    if (v2k_power_read (s->soap, m->source.vm.moref, &p, err) == -1)
      return -1;
    bool off = v2k_power_is_off (&p);
    if (!off)
      v2k_error_set (err, V2K_EXIT_USAGE,
                     "snapshot final needs VM %s powered off (it is %s): shut it down first, "
                     "or pass --allow-running", m->source.vm.name, p.state);
    v2k_power_free (&p);
    if (!off)
      return -1;
  }
  return 0;
}

/* vCenter reports a running task's percentage: log it as an event. */
static void
snapshot_progress (void *opaque, const char *task, int percent)
{
  v2k_session_event (opaque, EV_INFO, NULL, "snapshot.progress",
                     json_pack ("{s:s, s:i}", "task", task, "percent", percent));
}

json_t *
v2k_snapshot_json (const struct v2k_snapshot *snap, const struct v2k_manifest *m)
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

static int
snapshot_record (struct v2k_session *s, const char *moref, const char *name, int kind,
                 int64_t seq, struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  struct v2k_snapshot *arr = realloc (m->snapshots, (m->n_snapshots + 1) * sizeof *arr);
  if (!arr) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
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
  return v2k_snapshot_read_disks (s->soap, moref, m, snap, err);
}

int
v2k_step_snapshot (struct v2k_session *s, const struct v2k_snapshot_opts *o,
                   const struct v2k_snapshot **out, bool *adopted, struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  int kind = o->kind;
  int phase = kind == SNAP_BASE ? PHASE_SNAPSHOT_BASE : kind == SNAP_INCR ? PHASE_SNAPSHOT_INCR
    : PHASE_SNAPSHOT_FINAL;
  s->phase = phase;
  *adopted = false;
  const struct v2k_snapshot *pending = unsynced_snapshot (m, kind);
  if (pending && o->reuse_unsynced) {
    *out = pending;
    return 0;
  }
  if (pending) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "snapshot %s (%s) of this run has not been synced yet; run 'sync %s' first",
                   pending->moref, pending->name, v2k_snapshot_kind_names[kind]);
    return -1;
  }
  if (snapshot_allowed (s, kind, o->allow_running, err) == -1)
    return -1;
  int64_t seq = (int64_t) m->n_snapshots + 1;
  CLEANUP_FREE char *default_name = NULL, *moref = NULL;
  const char *name = o->name;
  if (!name) {
    if (asprintf (&default_name, "ablestack-v2k-%s-%s-%lld", m->run.id,
                  v2k_snapshot_kind_names[kind], (long long) seq) < 0) {
      default_name = NULL;
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    name = default_name;
  }
  v2k_session_step (s, phase, STEP_RUNNING);
  if (v2k_session_save (s, err) == -1)
    return -1;
  long timeout = o->task_timeout > 0 ? o->task_timeout : 3600;
  if (v2k_snapshot_find (s->soap, m->source.vm.moref, name, &moref, err) == -1)
    return -1;
  if (moref)
    *adopted = true;
  else {
    if (v2k_snapshot_create (s->soap, m->source.vm.moref, name, o->quiesce, (int) timeout,
                             snapshot_progress, s, &moref, err) == -1)
      return -1;
    v2k_crashpoint ("snapshot:created");
  }
  if (snapshot_record (s, moref, name, kind, seq, err) == -1)
    return -1;
  v2k_session_step (s, phase, STEP_DONE);
  if (v2k_session_save (s, err) == -1)
    return -1;
  const struct v2k_snapshot *snap = &m->snapshots[m->n_snapshots - 1];
  v2k_session_event (s, EV_INFO, NULL, *adopted ? "snapshot.adopted" : "snapshot.created",
                     v2k_snapshot_json (snap, m));
  *out = snap;
  return 0;
}

/* ---- sync ---- */

void
v2k_sync_opts_init (struct v2k_sync_opts *o)
{
  memset (o, 0, sizeof *o);
  o->max_inflight = 64 << 20;
  o->coalesce_gap = 64 << 10;
  o->connections = 4;
  o->checkpoint = 2.0;
  o->ceph_timeout = 10;
}

int
v2k_sync_getopt (int c, const char *arg, struct v2k_sync_opts *o, struct v2k_error *err)
{
  int r = 0;
  switch (c) {
  case OPT_SYNC_FULL: o->full = true; break;
  case OPT_SYNC_FORCE_BLOCK: o->force_block = true; break;
  case OPT_SYNC_JOBS: r = v2k_parse_size ("--jobs", arg, 1, 16, &o->jobs, err); break;
  case OPT_SYNC_REQ: r = v2k_parse_size ("--request-size", arg, 4096, 32 << 20, &o->request_size, err); break;
  case OPT_SYNC_INFLIGHT: r = v2k_parse_size ("--max-inflight", arg, 65536, 1LL << 32, &o->max_inflight, err); break;
  case OPT_SYNC_GAP: r = v2k_parse_size ("--coalesce-gap", arg, 0, 1LL << 30, &o->coalesce_gap, err); break;
  case OPT_SYNC_CONNS: r = v2k_parse_size ("--connections", arg, 1, 16, &o->connections, err); break;
  case OPT_SYNC_CHECKPOINT: {
    char *end;
    o->checkpoint = strtod (arg, &end);
    if (*end || !(o->checkpoint >= 0.01 && o->checkpoint <= 3600)) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--checkpoint-interval: '%s' is not a number of seconds "
                     "from 0.01 to 3600", arg);
      return -1;
    }
    break;
  }
  case OPT_SYNC_CEPH_CONF: o->ceph_conf = arg; break;
  case OPT_SYNC_CEPH_ID: o->ceph_id = arg; break;
  case OPT_SYNC_CEPH_TIMEOUT: r = v2k_parse_size ("--ceph-timeout", arg, 1, 3600, &o->ceph_timeout, err); break;
  default: return 0;
  }
  if (r == -1)
    return -1;
  if (o->request_size > 0 && o->max_inflight < o->request_size) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--max-inflight must be at least --request-size");
    return -1;
  }
  return 1;
}

int
v2k_step_sync (struct v2k_session *s, const struct v2k_conn_args *conn, int kind,
               const struct v2k_sync_opts *o, bool progress_bar, struct v2k_error *err)
{
  s->phase = kind == SNAP_BASE ? PHASE_SYNC_BASE : kind == SNAP_INCR ? PHASE_SYNC_INCR
    : PHASE_SYNC_FINAL;
  size_t ndisks = s->m->n_disks;
  int64_t req = o->request_size;
  if (req == 0)
    req = s->m->transport.kind == TRANSPORT_VDDK ? 2 << 20 : 1 << 20;
  struct v2k_sync_ctx ctx = {
    .m = s->m, .workdir = s->workdir, .ev = &s->ev, .soap = s->soap,
    .username = conn->username, .password = conn->password, .kind = kind, .full = o->full,
    .jobs = o->jobs > 0 ? (int) o->jobs : (int) (ndisks < 4 ? ndisks : 4),
    .connections = (int) o->connections, .request_size = (size_t) req,
    .max_inflight = (size_t) (o->max_inflight < req ? req : o->max_inflight),
    .coalesce_gap = o->coalesce_gap, .force_block_device = o->force_block,
    .checkpoint_seconds = o->checkpoint, .ceph_conf = o->ceph_conf, .ceph_id = o->ceph_id,
    .ceph_timeout = (int) o->ceph_timeout, .progress_bar = progress_bar,
    .task_timeout = conn->task_timeout > 0 ? (int) conn->task_timeout : 3600,
  };
  return v2k_sync_run (&ctx, err);
}

/* ---- verify ---- */

static void
vcenter_host (const struct v2k_manifest *m, char *buf, size_t len)
{
  const char *url = m->source.vcenter.url, *host = strstr (url, "://");
  snprintf (buf, len, "%.*s", (int) strcspn (host ? host + 3 : url, "/"), host ? host + 3 : url);
}

/* Where each disk's source is read from: a snapshot's backing, or (with
 * SNAP NULL) the powered-off VM's own disk. */
static const char *
verify_source_file (const struct v2k_snapshot *snap, const struct v2k_disk *d)
{
  if (!snap)
    return d->file_name;
  for (size_t k = 0; k < snap->n_disks; k++)
    if (snap->disks[k].key == d->key)
      return snap->disks[k].file_name;
  return NULL;
}

static int
verify_disk (struct v2k_session *s, const struct v2k_conn_args *conn, const char *rundir,
             const struct v2k_snapshot *snap, struct v2k_disk *d, int64_t samples,
             const char *mode, const char *against, FILE *out, size_t *differing,
             struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  const char *file_name = verify_source_file (snap, d);
  if (!file_name) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "snapshot %s has no disk %s", snap->moref, d->id);
    return -1;
  }
  char host[256];
  vcenter_host (m, host, sizeof host);
  struct v2k_source_args sa = { .m = m, .disk = d, .snapshot = snap ? snap->moref : NULL,
                                .file_name = file_name, .rundir = rundir, .workdir = s->workdir,
                                .password = conn->password, .username = conn->username,
                                .vcenter_host = host, .connections = 2 };
  struct v2k_target_args ta = { .m = m, .disk = d, .rundir = rundir, .connections = 2,
                                .ceph_conf = m->target.ceph_conf, .ceph_id = m->target.ceph_id,
                                .ceph_timeout = 10 };
  if (v2k_target_check (&ta, err) == -1)
    return -1;
  struct v2k_server ssrv = { 0 }, dsrv = { 0 };
  struct v2k_endpoint *src = v2k_source_open (&sa, &ssrv, err), *dst = NULL;
  struct v2k_verify_result res;
  int r = -1;
  if (src && (dst = v2k_target_open (&ta, &dsrv, err)))
    r = v2k_verify (src, dst, d->capacity, 4 << 20, samples,
                    (unsigned) time (NULL) ^ (unsigned) d->key, &v2k_stop_requested, &res, err);
  v2k_endpoint_close (src);
  v2k_endpoint_close (dst);
  v2k_server_stop (&ssrv);
  v2k_server_stop (&dsrv);
  if (r == -1) {
    v2k_error_prefix (err, "verify disk %s", d->id);
    return -1;
  }
  char now[32];
  v2k_now_rfc3339 (now);
  d->verify.state = res.nmismatch ? STEP_FAILED : STEP_DONE;
  v2k_set_str (&d->verify.snapshot, against);
  v2k_set_str (&d->verify.mode, mode);
  v2k_set_str (&d->verify.time, now);
  d->verify.bytes_checked = res.bytes_checked;
  d->verify.mismatches = (int64_t) res.nmismatch;
  json_t *ranges = json_array ();
  for (size_t k = 0; k < res.nfirst; k++)
    json_array_append_new (ranges, json_pack ("{s:I, s:I}", "start", (json_int_t) res.first[k].start,
                                              "length", (json_int_t) res.first[k].length));
  v2k_session_event (s, res.nmismatch ? EV_ERROR : EV_INFO, d->id,
                     res.nmismatch ? "verify.mismatch" : "verify.ok",
                     json_pack ("{s:s, s:s, s:I, s:I, s:o}", "snapshot", against, "mode", mode,
                                "bytes_checked", (json_int_t) res.bytes_checked,
                                "mismatching_chunks", (json_int_t) res.nmismatch, "first", ranges));
  if (res.nmismatch) {
    if ((*differing)++ == 0)
      v2k_error_set (err, V2K_EXIT_VERIFY,
                     "disk %s differs from %s in %zu chunk(s), first at offset %lld (%lld bytes)",
                     d->id, against, res.nmismatch, (long long) res.first[0].start,
                     (long long) res.first[0].length);
  }
  else if (out)
    fprintf (out, "disk %s: identical to %s (%lld bytes checked, %s)\n", d->id, against,
             (long long) res.bytes_checked, mode);
  return 0;
}

/* With no snapshot left, the VM's own disks are the source, but only while
 * it is powered off: a running guest changes them under the comparison. */
static int
verify_live_allowed (struct v2k_session *s, int kind, struct v2k_error *err)
{
  if (kind >= 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "this run has no %s snapshot on vCenter to verify against",
                   v2k_snapshot_kind_names[kind]);
    return -1;
  }
  struct v2k_power p;
  if (v2k_power_read (s->soap, s->m->source.vm.moref, &p, err) == -1)
    return -1;
  bool off = v2k_power_is_off (&p);
  if (!off)
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "this run has no snapshot left on vCenter, and VM %s is %s: verify compares "
                   "with the VM's own disks only while it is powered off",
                   s->m->source.vm.name, p.state);
  v2k_power_free (&p);
  return off ? 0 : -1;
}

int
v2k_step_verify (struct v2k_session *s, const struct v2k_conn_args *conn,
                 const struct v2k_verify_opts *o, FILE *out, struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  const struct v2k_snapshot *snap = v2k_manifest_latest_snapshot (m, o->kind);
  if (!snap && verify_live_allowed (s, o->kind, err) == -1)
    return -1;
  bool owned = false;
  CLEANUP_FREE char *rundir = v2k_rundir (s->workdir, &owned, err);
  if (!rundir)
    return -1;
  struct v2k_step *step = &m->phases.verify;
  char now[32], mode[32];
  v2k_now_rfc3339 (now);
  step->state = STEP_RUNNING;
  v2k_set_str (&step->started, now);
  if (o->samples > 0)
    snprintf (mode, sizeof mode, "sample:%lld", (long long) o->samples);
  else
    snprintf (mode, sizeof mode, "full");
  const char *against = snap ? snap->moref : "the powered-off VM";
  size_t differing = 0;
  int rc = 0;
  for (size_t i = 0; i < m->n_disks && rc == 0; i++) {
    struct v2k_error save_err = { 0 };
    if (verify_disk (s, conn, rundir, snap, &m->disks[i], o->samples, mode, against, out,
                     &differing, err) == -1)
      rc = -1;
    else if (v2k_session_save (s, &save_err) == -1) {
      *err = save_err;
      rc = -1;
    }
  }
  if (owned)
    rmdir (rundir);
  if (rc == -1)
    return -1;
  v2k_now_rfc3339 (now);
  step->state = differing ? STEP_FAILED : STEP_DONE;
  v2k_set_str (&step->finished, now);
  struct v2k_error saved = *err;
  if (v2k_session_save (s, err) == -1)
    return -1;
  if (differing) {
    *err = saved;
    return -1;
  }
  return 0;
}

/* ---- snapshot removal ---- */

int
v2k_step_remove_snapshots (struct v2k_session *s, long timeout, int *removed,
                           struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  for (size_t i = 0; i < m->n_snapshots; i++) {
    struct v2k_snapshot *snap = &m->snapshots[i];
    if (snap->removed)
      continue;
    if (v2k_snapshot_remove (s->soap, snap->moref, (int) timeout, err) == -1) {
      if (strcmp (v2k_soap_last_fault (s->soap)->name, "ManagedObjectNotFound") != 0)
        return -1;
      memset (err, 0, sizeof *err);
    }
    else
      (*removed)++;
    snap->removed = true;
    if (v2k_session_save (s, err) == -1)
      return -1;
    v2k_session_event (s, EV_INFO, NULL, "snapshot.removed",
                       json_pack ("{s:s, s:s}", "moref", snap->moref, "name", snap->name));
  }
  /* Snapshots an interrupted command took but never recorded: found by this
   * run's name prefix, removed by their moref. */
  CLEANUP_FREE char *prefix = NULL;
  if (asprintf (&prefix, "ablestack-v2k-%s-", m->run.id) < 0) {
    prefix = NULL;
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  char **names = NULL, **morefs = NULL;
  if (v2k_snapshot_list_prefixed (s->soap, m->source.vm.moref, prefix, &names, &morefs, err) == -1)
    return -1;
  int rc = 0;
  for (size_t i = 0; morefs && morefs[i]; i++) {
    if (v2k_snapshot_remove (s->soap, morefs[i], (int) timeout, err) == -1) {
      rc = -1;
      break;
    }
    (*removed)++;
    v2k_session_event (s, EV_INFO, NULL, "snapshot.removed",
                       json_pack ("{s:s, s:s, s:b}", "moref", morefs[i], "name", names[i],
                                  "unrecorded", 1));
  }
  v2k_strv_free (names);
  v2k_strv_free (morefs);
  return rc;
}
