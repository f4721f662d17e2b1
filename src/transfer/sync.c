#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sync.h"
#include "source.h"
#include "target.h"
#include "../util/cleanup.h"
#include "../util/crashpoint.h"
#include "../util/fsutil.h"
#include "../util/signals.h"
#include "../vsphere/cbt.h"
#include "../vsphere/snapshot.h"

enum area_method { AREAS_CBT, AREAS_BLOCK_STATUS, AREAS_FULL };
static const char *const method_names[] = { "cbt", "block_status", "full" };

struct job {
  struct sync_run *run;
  size_t disk;                    /* index in the manifest */
  const struct v2k_snapshot_disk *sd;
  v2k_extents areas;
  enum area_method method;
  bool resume;                    /* base: continue from the checkpoint */
  bool skip;                      /* already done for this snapshot */
  bool nothing;                   /* no changed areas: no data plane at all */
  struct v2k_copy_stats stats;
  struct v2k_error err;
  int rc;
  double rate;
  double last_event;              /* of sync.progress */
};

struct sync_run {
  struct v2k_sync_ctx *c;
  const struct v2k_snapshot *snap;
  pthread_mutex_t lock;           /* the manifest, its saves and the events */
  struct job *jobs;
  size_t njobs;
  size_t next;                    /* the next job to start */
  double last_save, last_bar;
  char *rundir;
  char *vcenter_host;
};

static const char *
phase_name (int kind)
{
  return v2k_phase_names[kind == SNAP_BASE ? PHASE_SYNC_BASE : kind == SNAP_INCR ? PHASE_SYNC_INCR
                         : PHASE_SYNC_FINAL];
}

static void
event (struct sync_run *r, enum v2k_event_level level, const char *disk, const char *name,
       json_t *detail)
{
  struct v2k_error ignored = { 0 };
  v2k_event (r->c->ev, level, phase_name (r->c->kind), disk, name, detail, &ignored);
}

/* Saves with the lock held; a failed save is reported by the next one that
 * matters (the commit), which does check. */
static int
save_locked (struct sync_run *r, struct v2k_error *err)
{
  r->last_save = v2k_monotonic_seconds ();
  return v2k_manifest_save (r->c->m, r->c->workdir, err);
}

/* The target's claim (target_created) is saved before the target is made;
 * the caller holds r->lock. */
static int
claim_target (void *opaque, struct v2k_error *err)
{
  return save_locked (opaque, err);
}

static void
draw_bar (struct sync_run *r)
{
  int64_t done = 0, total = 0;
  double rate = 0;
  for (size_t i = 0; i < r->c->m->n_disks; i++) {
    struct v2k_sync *s = v2k_disk_sync (&r->c->m->disks[i], r->c->kind);
    done += s->bytes_done;
    total += s->bytes_total;
    if (s->state == STEP_RUNNING)
      rate += (double) s->rate_bps;
  }
  double pct = total > 0 ? 100.0 * (double) done / (double) total : 100.0;
  fprintf (stderr, "\r[sync %s] %5.1f%%  %lld/%lld MiB  %.1f MiB/s", v2k_snapshot_kind_names[r->c->kind],
           pct, (long long) (done >> 20), (long long) (total >> 20), rate / 1048576.0);
  if (rate > 0 && total > done)
    fprintf (stderr, "  ETA %.0fs  ", (double) (total - done) / rate);
  else
    fprintf (stderr, "            ");
  fflush (stderr);
}

static void
on_progress (void *opaque, int64_t done, int64_t total, double rate)
{
  struct job *j = opaque;
  struct sync_run *r = j->run;
  pthread_mutex_lock (&r->lock);
  struct v2k_disk *d = &r->c->m->disks[j->disk];
  struct v2k_sync *s = v2k_disk_sync (d, r->c->kind);
  s->bytes_done = done;
  s->bytes_total = total;
  s->rate_bps = (int64_t) rate;
  j->rate = rate;
  double t = v2k_monotonic_seconds ();
  if (j->last_event == 0)
    j->last_event = t;
  if (t - r->last_save >= 1.0) {
    struct v2k_error ignored = { 0 };
    save_locked (r, &ignored);
  }
  if (r->c->progress_bar && t - r->last_bar >= 0.25) {
    draw_bar (r);
    r->last_bar = t;
  }
  bool log = t - j->last_event >= 5.0;
  if (log)
    j->last_event = t;
  pthread_mutex_unlock (&r->lock);
  if (log)
    event (r, EV_INFO, d->id, "sync.progress",
           json_pack ("{s:I, s:I, s:I}", "bytes_done", (json_int_t) done,
                      "bytes_total", (json_int_t) total, "rate_bps", (json_int_t) rate));
}

static void
on_checkpoint (void *opaque, int64_t offset, int64_t bytes_done)
{
  struct job *j = opaque;
  struct sync_run *r = j->run;
  if (r->c->kind != SNAP_BASE)
    return;  /* incremental copies restart whole: their areas are small */
  pthread_mutex_lock (&r->lock);
  struct v2k_sync *s = &r->c->m->disks[j->disk].base;
  if (offset > s->checkpoint)
    s->checkpoint = offset > r->c->m->disks[j->disk].capacity ? r->c->m->disks[j->disk].capacity : offset;
  (void) bytes_done;
  struct v2k_error ignored = { 0 };
  save_locked (r, &ignored);
  pthread_mutex_unlock (&r->lock);
  v2k_crashpoint ("sync:checkpoint");
}

/* Commits one disk: the new changeId, the counters and the sync state in one
 * atomic save, after its target was flushed. */
static int
commit_disk (struct job *j, struct v2k_error *err)
{
  struct sync_run *r = j->run;
  struct v2k_disk *d = &r->c->m->disks[j->disk];
  struct v2k_sync *s = v2k_disk_sync (d, r->c->kind);
  char ts[32];
  v2k_now_rfc3339 (ts);
  v2k_crashpoint ("sync:before-commit");
  pthread_mutex_lock (&r->lock);
  s->state = STEP_DONE;
  v2k_set_str (&s->finished, ts);
  v2k_set_str (&s->change_id, j->sd->change_id);
  if (r->c->kind == SNAP_BASE)
    s->checkpoint = d->capacity;
  s->bytes_done = s->bytes_total;
  v2k_set_str (&d->cbt.change_id, j->sd->change_id);
  d->counters.bytes_copied += j->stats.bytes_copied;
  d->counters.bytes_zeroed += j->stats.bytes_zeroed;
  d->counters.areas += (int64_t) j->areas.len;
  d->counters.syncs++;
  v2k_error_record_free (d->last_error);
  d->last_error = NULL;
  int rc = save_locked (r, err);
  pthread_mutex_unlock (&r->lock);
  if (rc == 0)
    event (r, EV_INFO, d->id, "sync.disk.done",
           json_pack ("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:s}", "method", method_names[j->method],
                      "areas", (json_int_t) j->areas.len, "retried", (json_int_t) j->stats.retried,
                      "bytes_copied", (json_int_t) j->stats.bytes_copied,
                      "bytes_zeroed", (json_int_t) j->stats.bytes_zeroed,
                      "bytes_skipped", (json_int_t) j->stats.bytes_skipped,
                      "bytes_unread", (json_int_t) j->stats.bytes_unread,
                      "seconds", j->stats.seconds,
                      "rate_bps", j->stats.seconds > 0 ? (double) j->stats.bytes_total / j->stats.seconds : 0.0,
                      "change_id", j->sd->change_id ? j->sd->change_id : ""));
  return rc;
}

static struct v2k_target_args
target_args (struct sync_run *r, struct v2k_disk *d)
{
  struct v2k_sync_ctx *c = r->c;
  return (struct v2k_target_args) {
    .m = c->m, .disk = d, .rundir = r->rundir, .connections = c->connections,
    .force_block_device = c->force_block_device,
    .ceph_conf = c->ceph_conf ? c->ceph_conf : c->m->target.ceph_conf,
    .ceph_id = c->ceph_id ? c->ceph_id : c->m->target.ceph_id,
    .ceph_timeout = c->ceph_timeout, .claim = claim_target, .claim_opaque = r,
  };
}

static int
copy_disk (struct job *j, struct v2k_error *err)
{
  struct sync_run *r = j->run;
  struct v2k_sync_ctx *c = r->c;
  struct v2k_disk *d = &c->m->disks[j->disk];
  struct v2k_server ssrv = { 0 }, dsrv = { 0 };
  struct v2k_endpoint *src = NULL, *dst = NULL;
  int rc = -1;

  bool fresh = false;
  struct v2k_target_args ta = target_args (r, d);
  pthread_mutex_lock (&r->lock);
  bool fresh_base = c->kind == SNAP_BASE && !j->resume;
  int prep = v2k_target_prepare (&ta, fresh_base, &fresh, err);
  if (prep == 0)
    prep = save_locked (r, err);  /* target_created and identity, before any byte is written */
  pthread_mutex_unlock (&r->lock);
  if (prep == -1)
    return -1;
  /* Only a target created empty for this base copy (or one resumed within
   * it) may skip zeros: anything else must have them written. */
  bool fresh_or_resumed = fresh || (j->resume && c->m->target.storage != STORAGE_BLOCK);
  if (j->nothing)
    return 0;  /* no changed areas: no data-plane process at all */

  struct v2k_source_args sa = { .m = c->m, .disk = d, .snapshot = r->snap->moref,
                                .file_name = j->sd->file_name, .rundir = r->rundir,
                                .workdir = c->workdir, .password = c->password,
                                .username = c->username, .vcenter_host = r->vcenter_host,
                                .connections = c->connections };
  if (!(src = v2k_source_open (&sa, &ssrv, err)) || !(dst = v2k_target_open (&ta, &dsrv, err)))
    goto out;
  if (src->size < d->capacity) {
    v2k_error_set (err, V2K_EXIT_TRANSFER, "disk %s: the source serves %lld bytes; the disk has %lld",
                   d->id, (long long) src->size, (long long) d->capacity);
    goto out;
  }
  if (j->method == AREAS_BLOCK_STATUS) {
    /* What VDDK reports allocated for a snapshot chain is not proven, and a
     * wrong hole would lose data: without CBT, a VDDK base reads every byte. */
    if (c->m->transport.kind == TRANSPORT_VDDK || src->ops->allocated (src, &j->areas, err) == -1) {
      if (v2k_error_isset (err))
        goto out;
      j->method = AREAS_FULL;
      v2k_extents_add (&j->areas, 0, d->capacity);
    }
    if (j->resume)
      v2k_extents_from (&j->areas, v2k_disk_sync (d, c->kind)->checkpoint);
    v2k_extents_coalesce (&j->areas, c->coalesce_gap);
    event (r, EV_WARN, d->id, "sync.areas",
           json_pack ("{s:s, s:I, s:I}", "method", method_names[j->method],
                      "areas", (json_int_t) j->areas.len,
                      "bytes", (json_int_t) v2k_extents_bytes (&j->areas)));
  }
  pthread_mutex_lock (&r->lock);
  v2k_disk_sync (d, c->kind)->bytes_total = v2k_extents_bytes (&j->areas);
  pthread_mutex_unlock (&r->lock);
  struct v2k_copy_opts o = {
    .request_size = c->request_size, .max_inflight = c->max_inflight,
    .target_is_zero = c->kind == SNAP_BASE && fresh_or_resumed, .retries = 4,
    /* qemu's block status follows the VMDK chain, and an nbd source is the
     * operator's own server. VDDK's allocation answers for snapshot chains
     * are not proven here, and CBT already limits what is read. */
    .source_zeros = c->m->transport.kind != TRANSPORT_VDDK,
    .checkpoint_seconds = c->kind == SNAP_BASE ? c->checkpoint_seconds : 0,
    .checkpoint = on_checkpoint, .progress = on_progress, .opaque = j,
    .stop = &v2k_stop_requested,
  };
  if (v2k_copy (src, dst, &j->areas, &o, &j->stats, err) == -1) {
    v2k_error_prefix (err, "disk %s", d->id);
    goto out;
  }
  rc = 0;
 out:
  v2k_endpoint_close (src);
  v2k_endpoint_close (dst);
  v2k_server_stop (&ssrv);
  v2k_server_stop (&dsrv);
  return rc;
}

static void *
worker (void *arg)
{
  struct sync_run *r = arg;
  for (;;) {
    pthread_mutex_lock (&r->lock);
    struct job *j = NULL;
    while (r->next < r->njobs && !j) {
      struct job *cand = &r->jobs[r->next++];
      if (!cand->skip)
        j = cand;
    }
    pthread_mutex_unlock (&r->lock);
    if (!j)
      return NULL;
    if (v2k_stop_requested) {
      v2k_error_set (&j->err, V2K_EXIT_INTERRUPTED, "interrupted before disk %s; re-run to resume",
                     r->c->m->disks[j->disk].id);
      j->rc = -1;
      continue;
    }
    j->rc = j->nothing && r->c->kind != SNAP_BASE ? 0 : copy_disk (j, &j->err);
    if (j->rc == 0)
      j->rc = commit_disk (j, &j->err);
    if (j->rc == -1) {
      pthread_mutex_lock (&r->lock);
      struct v2k_disk *d = &r->c->m->disks[j->disk];
      v2k_disk_sync (d, r->c->kind)->state = STEP_FAILED;
      struct v2k_error_record *rec = calloc (1, sizeof *rec);
      char ts[32];
      v2k_now_rfc3339 (ts);
      if (rec) {
        rec->code = strdup (v2k_exit_name (j->err.code));
        rec->message = strdup (j->err.message);
        rec->phase = strdup (phase_name (r->c->kind));
        rec->time = strdup (ts);
        v2k_error_record_free (d->last_error);
        d->last_error = rec;
      }
      struct v2k_error ignored = { 0 };
      save_locked (r, &ignored);
      pthread_mutex_unlock (&r->lock);
      event (r, EV_ERROR, d->id, "sync.disk.failed",
             json_pack ("{s:s, s:s}", "code", v2k_exit_name (j->err.code), "message", j->err.message));
    }
  }
}

/* Decides, for each disk, what to copy. Runs on the main thread: it uses the
 * vSphere session, which is not shared with the workers. */
static int
plan_job (struct sync_run *r, struct job *j, struct v2k_error *err)
{
  struct v2k_sync_ctx *c = r->c;
  struct v2k_disk *d = &c->m->disks[j->disk];
  struct v2k_sync *s = v2k_disk_sync (d, c->kind);
  for (size_t i = 0; i < r->snap->n_disks; i++)
    if (r->snap->disks[i].key == d->key)
      j->sd = &r->snap->disks[i];
  if (!j->sd) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "snapshot %s has no record of disk %s", r->snap->moref, d->id);
    return -1;
  }
  bool same_snapshot = s->snapshot && strcmp (s->snapshot, r->snap->moref) == 0;
  if (same_snapshot && s->state == STEP_DONE && !(c->kind == SNAP_BASE && c->full)) {
    j->skip = true;
    return 0;
  }
  const char *since = "*";
  if (c->kind == SNAP_BASE) {
    j->resume = same_snapshot && !c->full && d->target_created &&
      (s->state == STEP_RUNNING || s->state == STEP_FAILED) && s->checkpoint > 0;
    if (!j->resume && !c->full && d->base.state == STEP_DONE) {
      v2k_error_set (err, V2K_EXIT_USAGE,
                     "disk %s already holds base snapshot %s; a new base copy must start from an "
                     "empty target: run 'sync base --full'", d->id, s->snapshot ? s->snapshot : "?");
      return -1;
    }
  }
  else {
    if (d->base.state != STEP_DONE || !d->cbt.change_id) {
      v2k_error_set (err, V2K_EXIT_CBT,
                     "disk %s has no committed changeId (base sync not done, or CBT was reset): "
                     "run 'sync base' (after a reset: 'sync base --full') first", d->id);
      return -1;
    }
    if (!j->sd->change_id || !v2k_change_id_same_epoch (d->cbt.change_id, j->sd->change_id)) {
      v2k_error_set (err, V2K_EXIT_CBT,
                     "disk %s: snapshot %s has changeId \"%s\", not of the tracking epoch of the "
                     "committed \"%s\": change tracking was reset. Recover with 'cbt reset', then "
                     "'sync base --full'", d->id, r->snap->moref,
                     j->sd->change_id ? j->sd->change_id : "none", d->cbt.change_id);
      return -1;
    }
    since = d->cbt.change_id;
  }
  int pages = 0;
  j->method = AREAS_CBT;
  if (v2k_changed_areas_query (c->soap, c->m->source.vm.moref, r->snap->moref, d->key, d->capacity,
                               since, &j->areas, &pages, err) == -1) {
    const struct v2k_fault *f = v2k_soap_last_fault (c->soap);
    if (c->kind != SNAP_BASE || strcmp (f->name, "FileFault") != 0)
      return -1;
    /* Tracking is not active for this snapshot: ask the source instead. */
    memset (err, 0, sizeof *err);
    j->method = AREAS_BLOCK_STATUS;
    v2k_extents_reset (&j->areas);
  }
  if (j->method == AREAS_CBT) {
    if (j->resume)
      v2k_extents_from (&j->areas, s->checkpoint);
    v2k_extents_coalesce (&j->areas, c->coalesce_gap);
    j->nothing = j->areas.len == 0;
  }
  if (c->kind == SNAP_BASE && c->m->target.storage == STORAGE_BLOCK) {
    /* A block device is not known to read zeros: the whole disk is written,
     * holes as zero operations. */
    v2k_extents_reset (&j->areas);
    v2k_extents_add (&j->areas, 0, d->capacity);
    if (j->resume)
      v2k_extents_from (&j->areas, s->checkpoint);
    j->method = j->method == AREAS_CBT ? AREAS_FULL : j->method;
    j->nothing = false;
  }
  char ts[32];
  v2k_now_rfc3339 (ts);
  /* Progress counts this invocation's work; a resumed base copy starts its
   * count at the checkpoint. */
  s->bytes_done = 0;
  if (!j->resume) {
    s->checkpoint = 0;
    v2k_set_str (&s->started, ts);
  }
  s->state = STEP_RUNNING;
  v2k_set_str (&s->snapshot, r->snap->moref);
  v2k_set_str (&s->finished, NULL);
  s->bytes_total = v2k_extents_bytes (&j->areas);
  event (r, EV_INFO, d->id, "sync.disk.start",
         json_pack ("{s:s, s:s, s:s, s:I, s:I, s:i, s:b}", "snapshot", r->snap->moref,
                    "since", since, "method", method_names[j->method],
                    "areas", (json_int_t) j->areas.len,
                    "bytes", (json_int_t) v2k_extents_bytes (&j->areas), "pages", pages,
                    "resume_from", j->resume ? (int) 1 : 0));
  return 0;
}

/* After a sync: the older migration snapshots go, by moref, so at most one
 * stays between cycles. */
static int
remove_previous_snapshots (struct sync_run *r, struct v2k_error *err)
{
  struct v2k_manifest *m = r->c->m;
  for (size_t i = 0; i < m->n_snapshots; i++) {
    struct v2k_snapshot *s = &m->snapshots[i];
    if (s->removed || s == r->snap || s->seq >= r->snap->seq)
      continue;
    if (v2k_snapshot_remove (r->c->soap, s->moref, r->c->task_timeout, err) == -1) {
      if (strcmp (v2k_soap_last_fault (r->c->soap)->name, "ManagedObjectNotFound") != 0)
        return -1;
      memset (err, 0, sizeof *err);  /* already gone */
    }
    s->removed = true;
    if (v2k_manifest_save (m, r->c->workdir, err) == -1)
      return -1;
    event (r, EV_INFO, NULL, "snapshot.removed", json_pack ("{s:s, s:s}", "moref", s->moref, "name", s->name));
  }
  return 0;
}

static char *
host_of (const char *url)
{
  const char *p = strstr (url, "://");
  p = p ? p + 3 : url;
  size_t n = strcspn (p, "/");
  return strndup (p, n);
}

int
v2k_sync_run (struct v2k_sync_ctx *c, struct v2k_error *err)
{
  struct v2k_manifest *m = c->m;
  struct sync_run r = { .c = c };
  int rc = -1;
  bool owned_rundir = false;
  pthread_mutex_init (&r.lock, NULL);
  const char *kind = v2k_snapshot_kind_names[c->kind];
  if (!(r.snap = v2k_manifest_latest_snapshot (m, c->kind))) {
    v2k_error_set (err, V2K_EXIT_USAGE, "this run has no %s snapshot to sync from: run 'snapshot %s' first",
                   kind, kind);
    goto out;
  }
  if (c->full && c->kind != SNAP_BASE) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--full belongs to 'sync base'");
    goto out;
  }
  if (!(r.rundir = v2k_rundir (c->workdir, &owned_rundir, err)))
    goto out;
  r.vcenter_host = host_of (m->source.vcenter.url);
  r.njobs = m->n_disks;
  r.jobs = calloc (r.njobs ? r.njobs : 1, sizeof *r.jobs);
  if (!r.jobs || !r.vcenter_host) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    goto out;
  }
  /* Every target must still be the one recorded before anything is planned,
   * saved or written: only 'sync base --full' starts a disk over. */
  for (size_t i = 0; i < m->n_disks && !(c->kind == SNAP_BASE && c->full); i++) {
    struct v2k_target_args ta = target_args (&r, &m->disks[i]);
    if (v2k_target_check (&ta, err) == -1)
      goto out;
  }
  for (size_t i = 0; i < r.njobs; i++) {
    r.jobs[i].run = &r;
    r.jobs[i].disk = i;
    if (plan_job (&r, &r.jobs[i], err) == -1)
      goto out;
  }
  int phase = c->kind == SNAP_BASE ? PHASE_SYNC_BASE : c->kind == SNAP_INCR ? PHASE_SYNC_INCR : PHASE_SYNC_FINAL;
  struct v2k_step *step = v2k_manifest_step (m, phase);
  char ts[32];
  v2k_now_rfc3339 (ts);
  m->phase = phase;
  step->state = STEP_RUNNING;
  v2k_set_str (&step->started, ts);
  v2k_set_str (&step->finished, NULL);
  if (v2k_manifest_save (m, c->workdir, err) == -1)
    goto out;

  int nthreads = c->jobs > 0 ? c->jobs : 1;
  if ((size_t) nthreads > r.njobs)
    nthreads = (int) r.njobs;
  pthread_t th[16];
  if (nthreads > 16)
    nthreads = 16;
  int started = 0;
  for (int i = 0; i < nthreads; i++)
    if (pthread_create (&th[i], NULL, worker, &r) == 0)
      started++;
  if (started == 0)
    worker (&r);
  for (int i = 0; i < started; i++)
    pthread_join (th[i], NULL);
  if (c->progress_bar) {
    draw_bar (&r);
    fputc ('\n', stderr);
  }

  /* The first failure is the command's error; every disk's is in the manifest. */
  for (size_t i = 0; i < r.njobs; i++)
    if (!r.jobs[i].skip && r.jobs[i].rc == -1) {
      *err = r.jobs[i].err;
      goto out;
    }
  /* After a base too: a base --full (recovering from a CBT reset) makes any
   * older migration snapshot obsolete, an unsynced incremental one included. */
  if (remove_previous_snapshots (&r, err) == -1)
    goto out;
  v2k_now_rfc3339 (ts);
  step->state = STEP_DONE;
  v2k_set_str (&step->finished, ts);
  if (c->kind == SNAP_INCR) {
    /* An incr snapshot is only taken once the previous one is synced, so
     * the rounds done are the incr snapshots recorded: re-runs count once. */
    m->incr_rounds = 0;
    for (size_t i = 0; i < m->n_snapshots; i++)
      m->incr_rounds += m->snapshots[i].kind == SNAP_INCR;
  }
  v2k_error_record_free (m->last_error);
  m->last_error = NULL;
  if (v2k_manifest_save (m, c->workdir, err) == -1)
    goto out;
  int64_t copied = 0, zeroed = 0;
  for (size_t i = 0; i < r.njobs; i++) {
    copied += r.jobs[i].stats.bytes_copied;
    zeroed += r.jobs[i].stats.bytes_zeroed;
  }
  event (&r, EV_INFO, NULL, "sync.done",
         json_pack ("{s:s, s:s, s:I, s:I}", "kind", kind, "snapshot", r.snap->moref,
                    "bytes_copied", (json_int_t) copied, "bytes_zeroed", (json_int_t) zeroed));
  rc = 0;
 out:
  for (size_t i = 0; r.jobs && i < r.njobs; i++)
    v2k_extents_reset (&r.jobs[i].areas);
  free (r.jobs);
  if (owned_rundir && r.rundir)
    rmdir (r.rundir);
  free (r.rundir);
  free (r.vcenter_host);
  pthread_mutex_destroy (&r.lock);
  return rc;
}
