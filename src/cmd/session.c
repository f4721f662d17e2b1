#include <dirent.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "../state/workdir.h"
#include "../transfer/server.h"
#include "../util/fsutil.h"
#include "../vsphere/propcoll.h"

void
v2k_session_event (struct v2k_session *s, enum v2k_event_level level, const char *disk,
                   const char *event, json_t *detail)
{
  struct v2k_error ignored = { 0 };
  const char *phase = s->m ? v2k_phase_names[s->phase] : NULL;
  v2k_event (&s->ev, level, phase, disk, event, detail, &ignored);
}

static int
verify_identity (struct v2k_session *s, struct v2k_error *err)
{
  const struct v2k_manifest *m = s->m;
  const char *want_vc = m->source.vcenter.instance_uuid;
  const char *got_vc = v2k_soap_content (s->soap)->about_instance_uuid;
  if (want_vc && got_vc && strcmp (want_vc, got_vc) != 0) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "%s is not the vCenter of this workdir (instance %s, the workdir's is %s at %s)",
                   v2k_soap_url (s->soap), got_vc, want_vc, m->source.vcenter.url);
    return -1;
  }
  static const char *const paths[] = { "config.instanceUuid", NULL };
  struct v2k_pc_result res = { 0 };
  if (v2k_pc_get (s->soap, "VirtualMachine", m->source.vm.moref, paths, &res, err) == -1) {
    if (strcmp (v2k_soap_last_fault (s->soap)->name, "ManagedObjectNotFound") == 0)
      v2k_error_set (err, V2K_EXIT_VSPHERE, "VM %s (%s) of this workdir no longer exists on %s",
                     m->source.vm.name, m->source.vm.moref, v2k_soap_url (s->soap));
    return -1;
  }
  char *uuid = res.nobjs ? v2k_pc_prop_text (&res.objs[0], "config.instanceUuid") : NULL;
  v2k_pc_result_free (&res);
  bool same = uuid && strcmp (uuid, m->source.vm.instance_uuid) == 0;
  if (!same)
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "%s on %s is not the VM of this workdir (instance UUID %s, the workdir's is %s)",
                   m->source.vm.moref, v2k_soap_url (s->soap), uuid ? uuid : "unknown",
                   m->source.vm.instance_uuid);
  free (uuid);
  return same ? 0 : -1;
}

int
v2k_session_connect (struct v2k_session *s, struct v2k_conn_args *conn, struct v2k_error *err)
{
  struct v2k_vsphere_opts opts;
  if (v2k_conn_finish (conn, &opts, err) == -1)
    return -1;
  if (opts.insecure)
    v2k_session_event (s, EV_WARN, NULL, "tls.insecure",
                       json_pack ("{s:s}", "url", opts.url));
  if (!(s->soap = v2k_soap_connect (&opts, err)))
    return -1;
  return verify_identity (s, err);
}

/* A save killed between writing its temp file and the rename leaves
 * manifest.json.tmp.<pid> behind. Holding the lock, no save is running,
 * so any such file is stale. */
static void
sweep_stale_temp_files (const char *workdir)
{
  DIR *d = opendir (workdir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir (d)))
    if (strncmp (e->d_name, V2K_MANIFEST_FILE ".tmp.", sizeof V2K_MANIFEST_FILE + 4) == 0)
      unlinkat (dirfd (d), e->d_name, 0);
  closedir (d);
}

int
v2k_session_open (struct v2k_global *g, const char *command, bool lock,
                  struct v2k_conn_args *conn, struct v2k_session *s, struct v2k_error *err)
{
  memset (s, 0, sizeof *s);
  s->lock.fd = -1;
  s->command = command;
  if (!g->workdir) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "%s needs --workdir DIR (the path that init printed), given before the command",
                   command);
    return -1;
  }
  s->workdir = g->workdir;
  if (v2k_workdir_check (g->workdir, err) == -1)
    return -1;
  if (lock) {
    if (v2k_lock_acquire (g->workdir, command, &s->lock, err) == -1)
      return -1;
    s->locked = true;
    sweep_stale_temp_files (g->workdir);
    /* A killed command's helpers may still hold the targets' image locks. */
    s->stale_helpers = v2k_server_stop_stale (g->workdir);
  }
  if (!(s->m = v2k_manifest_load (g->workdir, err)))
    return -1;
  s->phase = s->m->phase;
  s->ev.workdir = g->workdir;
  s->ev.run_id = s->m->run.id;
  if (conn)
    return v2k_session_connect (s, conn, err);
  return 0;
}

int
v2k_session_save (struct v2k_session *s, struct v2k_error *err)
{
  return v2k_manifest_save (s->m, s->workdir, err);
}

void
v2k_session_step (struct v2k_session *s, int phase, int state)
{
  struct v2k_step *step = v2k_manifest_step (s->m, phase);
  char now[32];
  v2k_now_rfc3339 (now);
  s->phase = phase;
  if (phase > s->m->phase || state == STEP_RUNNING)
    s->m->phase = phase;
  if (!step)
    return;
  step->state = state;
  if (state == STEP_RUNNING) {
    free (step->started);
    step->started = strdup (now);
    free (step->finished);
    step->finished = NULL;
  }
  else {
    free (step->finished);
    step->finished = strdup (now);
  }
  if (state == STEP_DONE && s->m->last_error) {
    v2k_error_record_free (s->m->last_error);
    s->m->last_error = NULL;
  }
}

void
v2k_session_close (struct v2k_session *s, int rc, const struct v2k_error *err)
{
  /* Refusals of bad requests change nothing, so they do not mark the run failed. */
  if (rc != 0 && s->locked && s->m && err && v2k_error_isset (err) &&
      err->code != V2K_EXIT_USAGE) {
    struct v2k_error_record *r = calloc (1, sizeof *r);
    char now[32];
    v2k_now_rfc3339 (now);
    if (r) {
      r->code = strdup (v2k_exit_name (err->code));
      r->message = strdup (err->message);
      r->phase = strdup (v2k_phase_names[s->phase]);
      r->time = strdup (now);
      v2k_error_record_free (s->m->last_error);
      s->m->last_error = r;
      struct v2k_step *step = v2k_manifest_step (s->m, s->phase);
      if (step && step->state == STEP_RUNNING)
        step->state = STEP_FAILED;
      struct v2k_error ignored = { 0 };
      v2k_manifest_save (s->m, s->workdir, &ignored);
    }
    char event[96];
    snprintf (event, sizeof event, "%s.failed", s->command);
    v2k_session_event (s, EV_ERROR, NULL, event,
                       json_pack ("{s:s, s:s}", "code", v2k_exit_name (err->code),
                                  "message", err->message));
  }
  v2k_soap_close (s->soap);
  s->soap = NULL;
  v2k_manifest_free (s->m);
  s->m = NULL;
  if (s->locked)
    v2k_lock_release (&s->lock);
  s->locked = false;
}
