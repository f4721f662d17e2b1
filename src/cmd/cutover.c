/* cutover: stop the source, take and copy the final delta, then define the
 * domain in libvirt (and start it), and remove this run's snapshots. Every
 * step is recorded as it finishes; a re-run continues from the one that
 * failed, never powers the source back on, and never copies twice what is
 * already final. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "cmd.h"
#include "session.h"
#include "steps.h"
#include "../kvm/convert.h"
#include "../kvm/domain.h"
#include "../kvm/libvirt.h"
#include "../state/workdir.h"
#include "../transfer/rbd.h"
#include "../transfer/target.h"
#include "../util/cleanup.h"
#include "../util/crashpoint.h"
#include "../util/fsutil.h"
#include "../util/signals.h"
#include "../util/units.h"
#include "../vsphere/power.h"
#include "../vsphere/snapshot.h"
#include "../util/getopt.h"

const char *const v2k_shutdown_names[] = { "guest", "poweroff", "manual", NULL };
const char *const v2k_provider_names[] = { "libvirt", "ablestack-cloud", "none", NULL };

void
v2k_cutover_opts_init (struct v2k_cutover_opts *o)
{
  memset (o, 0, sizeof *o);
  o->shutdown = SHUTDOWN_GUEST;
  o->shutdown_timeout = 300;
  o->disk_bus = -1;
  o->nic_model = -1;
  o->convert = CONVERT_AUTO;
  o->convert_accel = ACCEL_PROBE;
  o->provider = PROVIDER_LIBVIRT;
  v2k_cloud_opts_init (&o->cloud);
}

void
v2k_cutover_opts_free (struct v2k_cutover_opts *o)
{
  free (o->net_map);
  o->net_map = NULL;
  o->n_net_map = 0;
  v2k_cloud_opts_free (&o->cloud);
}

static int
net_target_check (const char *opt, const char *t, struct v2k_error *err)
{
  if ((strncmp (t, "bridge:", 7) == 0 && t[7]) || (strncmp (t, "network:", 8) == 0 && t[8]))
    return 0;
  v2k_error_set (err, V2K_EXIT_USAGE, "%s: '%s' is not bridge:BRIDGE or network:NETWORK", opt, t);
  return -1;
}

int
v2k_cutover_getopt (int c, const char *arg, struct v2k_cutover_opts *o, struct v2k_error *err)
{
  int r = 0;
  switch (c) {
  case OPT_CUT_SHUTDOWN: r = v2k_parse_enum ("--shutdown", arg, v2k_shutdown_names, &o->shutdown, err); break;
  case OPT_CUT_SHUTDOWN_TIMEOUT:
    r = v2k_parse_size ("--shutdown-timeout", arg, 1, 86400, &o->shutdown_timeout, err);
    break;
  case OPT_CUT_FORCE_POWEROFF: o->force_poweroff = true; break;
  case OPT_CUT_DEFINE_ONLY: o->define_only = true; break;
  case OPT_CUT_START: o->start = true; break;
  case OPT_CUT_LIBVIRT_URI: o->libvirt_uri = arg; break;
  case OPT_CUT_NAME:
    if (!*arg || strchr (arg, '/')) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--name: '%s' is not a usable domain name", arg);
      return -1;
    }
    o->name = arg;
    break;
  case OPT_CUT_DISK_BUS: r = v2k_parse_enum ("--disk-bus", arg, v2k_disk_bus_names, &o->disk_bus, err); break;
  case OPT_CUT_NIC_MODEL: r = v2k_parse_enum ("--nic-model", arg, v2k_nic_model_names, &o->nic_model, err); break;
  case OPT_CUT_NET_MAP: {
    const char *eq = strrchr (arg, '=');
    if (!eq || eq == arg) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--net-map: '%s' is not 'VMWARE NETWORK=bridge:BR' "
                     "or '…=network:NET'", arg);
      return -1;
    }
    if (net_target_check ("--net-map", eq + 1, err) == -1)
      return -1;
    const char **v = realloc (o->net_map, (o->n_net_map + 1) * sizeof *v);
    if (!v) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    o->net_map = v;
    v[o->n_net_map++] = arg;
    break;
  }
  case OPT_CUT_NET_DEFAULT:
    r = net_target_check ("--net-default", arg, err);
    o->net_default = arg;
    break;
  case OPT_CUT_KEEP_SNAPSHOTS: o->keep_snapshots = true; break;
  case OPT_CUT_CONVERT: r = v2k_parse_enum ("--convert", arg, v2k_convert_mode_names, &o->convert, err); break;
  case OPT_CUT_PROVIDER: r = v2k_parse_enum ("--target-provider", arg, v2k_provider_names, &o->provider, err); break;
  case OPT_CUT_CONVERT_ACCEL:
    r = v2k_parse_enum ("--convert-accel", arg, v2k_convert_accel_names, &o->convert_accel, err);
    break;
  case OPT_CUT_RBD_SECRET: o->rbd_secret = arg; break;
  default: return v2k_cloud_getopt (c, arg, &o->cloud, err);
  }
  return r == -1 ? -1 : 1;
}

/* v1's --define-only: the cutover ends in a libvirt domain, left off unless
 * --start also starts it (v1's own workflow is 'cutover --define-only
 * --start'). Other providers make no libvirt domain. */
int
v2k_cutover_define_only_check (const struct v2k_cutover_opts *o, const char *command,
                               struct v2k_error *err)
{
  if (!o->define_only)
    return 0;
  if (o->provider != PROVIDER_LIBVIRT) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: --define-only defines a libvirt domain; "
                   "--target-provider %s defines none", command, v2k_provider_names[o->provider]);
    return -1;
  }
  return 0;
}

/* ---- preflight: everything that can be refused is refused before the
 * source is stopped ---- */

struct cutover_plan {
  const char *name;
  char *default_name;
  char *xml;
  int disk_bus;
  char **monitors;
  size_t n_monitors;
  virConnectPtr conn;
  bool exists;             /* a domain of that name is already there (ours) */
  bool convert;            /* the guest is to be converted now */
  struct v2k_register_ctx reg;   /* --target-provider ablestack-cloud */
};

static void
plan_free (struct cutover_plan *p)
{
  free (p->xml);
  free (p->default_name);
  v2k_strv_free (p->monitors);
  if (p->conn)
    virConnectClose (p->conn);
  v2k_register_close (&p->reg);
}

static int
save_session_cb (void *opaque, struct v2k_error *err)
{
  return v2k_session_save (opaque, err);
}

/* The domain for the guest as it is now: virtio once converted, else SATA
 * and e1000e, unless the operator chose. */
static int
domain_xml (struct v2k_session *s, const struct v2k_cutover_opts *o, struct cutover_plan *p,
            struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  bool virtio = m->conversion.converted;
  struct v2k_domain_opts dopts = {
    .name = p->name,
    .disk_bus = o->disk_bus >= 0 ? o->disk_bus : virtio ? DISK_BUS_VIRTIO : DISK_BUS_SATA,
    .nic_model = o->nic_model >= 0 ? o->nic_model : virtio ? NIC_VIRTIO : NIC_E1000E,
    .net_map = o->net_map, .n_net_map = o->n_net_map, .net_default = o->net_default,
    .rbd_secret = o->rbd_secret, .rbd_user = m->target.ceph_id,
    .rbd_monitors = (const char *const *) p->monitors, .n_rbd_monitors = p->n_monitors,
  };
  free (p->xml);
  p->disk_bus = dopts.disk_bus;
  return (p->xml = v2k_domain_xml (m, &dopts, err)) ? 0 : -1;
}

/* Whether the guest still needs converting, and whether it can be: a
 * blocker refuses the cutover under 'required' and plans the fallback under
 * 'auto', both before the shutdown. */
static int
conversion_plan (struct v2k_session *s, const struct v2k_cutover_opts *o, struct cutover_plan *p,
                 struct v2k_error *err)
{
  struct v2k_conversion *cv = &s->m->conversion;
  v2k_set_str (&cv->mode, v2k_convert_mode_names[o->convert]);
  p->convert = o->convert != CONVERT_OFF && !cv->converted && !cv->fallback;
  if (!p->convert)
    return 0;
  CLEANUP_FREE char *blocker = v2k_convert_blocker (s->m);
  if (!blocker)
    return 0;
  if (o->convert == CONVERT_REQUIRED) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--convert required: %s. Nothing was changed; or use "
                   "--convert auto to cut over with SATA and e1000e", blocker);
    return -1;
  }
  p->convert = false;
  v2k_set_str (&cv->fallback, blocker);
  v2k_session_event (s, EV_WARN, NULL, "convert.fallback",
                     json_pack ("{s:s, s:s}", "reason", blocker, "uses", "sata+e1000e"));
  return 0;
}

static int
preflight (struct v2k_session *s, const struct v2k_cutover_opts *o, struct cutover_plan *p,
           struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  for (size_t i = 0; i < m->n_disks; i++)
    if (m->disks[i].base.state != STEP_DONE) {
      v2k_error_set (err, V2K_EXIT_USAGE, "cutover needs a completed base sync (disk %s is %s): "
                     "run 'snapshot base' and 'sync base' first", m->disks[i].id,
                     v2k_step_state_names[m->disks[i].base.state]);
      return -1;
    }
  /* A target gone or replaced now would be found only after the shutdown. */
  if (v2k_targets_check (m, NULL, NULL, 10, err) == -1)
    return -1;
  if (o->name)
    p->name = o->name;
  else {
    /* libvirt refuses a '/' in a domain name; vSphere allows one. */
    v2k_set_str (&p->default_name, m->source.vm.name);
    for (char *c = p->default_name; c && *c; c++)
      if (*c == '/')
        *c = '_';
    p->name = p->default_name;
  }
  if (conversion_plan (s, o, p, err) == -1)
    return -1;
  if (o->provider == PROVIDER_CLOUD) {
    p->reg = (struct v2k_register_ctx) { .m = m, .ev = &s->ev, .save = save_session_cb, .opaque = s,
                                         .stop = &v2k_stop_requested };
    return v2k_register_preflight (&p->reg, &o->cloud, err);
  }
  if (o->provider == PROVIDER_NONE)
    return 0;
  if (m->target.storage == STORAGE_RBD) {
    struct v2k_rbd_conn rc = { .conf = m->target.ceph_conf, .id = m->target.ceph_id };
    if (v2k_rbd_monitors (&rc, &p->monitors, &p->n_monitors, err) == -1)
      return -1;
  }
  if (domain_xml (s, o, p, err) == -1)
    return -1;
  if (!(p->conn = v2k_libvirt_open (o->libvirt_uri, err)))
    return -1;
  return v2k_libvirt_check_name (p->conn, p->name, m->run.id, m->target.libvirt.domain_uuid,
                                 &p->exists, err);
}

/* ---- shutdown ---- */

static void
record_powered_off (struct v2k_session *s, const char *policy, double t0)
{
  char now[32];
  v2k_now_rfc3339 (now);
  v2k_set_str (&s->m->cutover.shutdown, policy);
  v2k_set_str (&s->m->cutover.powered_off, now);
  s->m->cutover.shutdown_ms = (int64_t) ((v2k_monotonic_seconds () - t0) * 1000);
}

static int
shutdown_source (struct v2k_session *s, const struct v2k_cutover_opts *o, FILE *out,
                 struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  const char *vm = m->source.vm.moref;
  if (m->cutover.powered_off)
    return 0;
  struct v2k_power p;
  if (v2k_power_read (s->soap, vm, &p, err) == -1)
    return -1;
  double t0 = v2k_monotonic_seconds ();
  int rc = 0;
  const char *policy = v2k_shutdown_names[o->shutdown];
  if (v2k_power_is_off (&p)) {
    v2k_session_event (s, EV_INFO, NULL, "shutdown.already_off", json_pack ("{s:s}", "policy", policy));
    record_powered_off (s, policy, t0);
    goto out;
  }
  if (o->shutdown == SHUTDOWN_MANUAL) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--shutdown manual: VM %s is still %s; shut it down "
                   "first, or use --shutdown guest or poweroff", m->source.vm.name, p.state);
    rc = -1;
    goto out;
  }
  if (o->shutdown == SHUTDOWN_GUEST) {
    if (v2k_power_shutdown_guest (s->soap, vm, &p, err) == -1) {
      rc = -1;
      goto out;
    }
    v2k_session_event (s, EV_INFO, NULL, "shutdown.guest_requested",
                       json_pack ("{s:I}", "timeout_seconds", (json_int_t) o->shutdown_timeout));
    if (out)
      fprintf (out, "cutover: asked the guest of %s to shut down (up to %lld s)\n",
               m->source.vm.name, (long long) o->shutdown_timeout);
    int w = v2k_power_wait_off (s->soap, vm, (int) o->shutdown_timeout, &v2k_stop_requested, err);
    if (w == -1) {
      rc = -1;
      goto out;
    }
    if (w == 0) {
      record_powered_off (s, policy, t0);
      goto out;
    }
    if (v2k_stop_requested) {
      v2k_error_set (err, V2K_EXIT_INTERRUPTED, "interrupted while waiting for the guest to shut down");
      rc = -1;
      goto out;
    }
    v2k_session_event (s, EV_WARN, NULL, "shutdown.timeout",
                       json_pack ("{s:I, s:b}", "timeout_seconds", (json_int_t) o->shutdown_timeout,
                                  "force_poweroff", o->force_poweroff));
    if (!o->force_poweroff) {
      v2k_error_set (err, V2K_EXIT_VSPHERE, "VM %s did not shut down within %lld s; it is left "
                     "as it is. Re-run cutover with a longer --shutdown-timeout, or with "
                     "--force-poweroff", m->source.vm.name, (long long) o->shutdown_timeout);
      rc = -1;
      goto out;
    }
    policy = "guest+poweroff";
  }
  if (v2k_power_off (s->soap, vm, 600, err) == -1) {
    rc = -1;
    goto out;
  }
  record_powered_off (s, policy, t0);
 out:
  if (rc == 0) {
    v2k_session_event (s, EV_INFO, NULL, "shutdown.done",
                       json_pack ("{s:s, s:f}", "policy", m->cutover.shutdown,
                                  "seconds", (double) m->cutover.shutdown_ms / 1000.0));
    rc = v2k_session_save (s, err);
    v2k_crashpoint ("cutover:powered-off");
  }
  v2k_power_free (&p);
  return rc;
}

/* ---- the final delta ---- */

static bool
final_done (const struct v2k_manifest *m)
{
  for (size_t i = 0; i < m->n_disks; i++)
    if (m->disks[i].final.state != STEP_DONE)
      return false;
  return true;
}

static int
final_sync (struct v2k_session *s, const struct v2k_conn_args *conn,
            const struct v2k_sync_opts *so, bool progress_bar, FILE *out, struct v2k_error *err)
{
  if (final_done (s->m))
    return 0;
  struct v2k_snapshot_opts sn = { .kind = SNAP_FINAL, .reuse_unsynced = true,
                                  .task_timeout = conn->task_timeout };
  const struct v2k_snapshot *snap;
  bool adopted;
  double t0 = v2k_monotonic_seconds ();
  if (v2k_step_snapshot (s, &sn, &snap, &adopted, err) == -1)
    return -1;
  if (out)
    fprintf (out, "cutover: final snapshot %s; copying the final delta\n", snap->moref);
  struct v2k_sync_opts fo = *so;
  fo.full = false;
  if (v2k_step_sync (s, conn, SNAP_FINAL, &fo, progress_bar, err) == -1)
    return -1;
  s->m->cutover.final_sync_ms = (int64_t) ((v2k_monotonic_seconds () - t0) * 1000);
  s->phase = PHASE_CUTOVER;
  return v2k_session_save (s, err);
}

/* ---- guest conversion ---- */

static int
save_session (void *opaque, struct v2k_error *err)
{
  return v2k_session_save (opaque, err);
}

int
v2k_step_convert (struct v2k_session *s, int accel, FILE *out, struct v2k_error *err)
{
  struct v2k_convert_ctx c = {
    .m = s->m, .workdir = s->workdir, .ev = &s->ev,
    .accel = accel == ACCEL_PROBE ? v2k_convert_probe_accel () : accel,
    .stop = &v2k_stop_requested, .save = save_session, .opaque = s,
  };
  /* virt-v2v rewrites what it finds: it must find the disks we copied. */
  if (v2k_targets_check (s->m, NULL, NULL, 10, err) == -1)
    return -1;
  if (out)
    fprintf (out, "converting the guest with virt-v2v-in-place (%s); this takes minutes\n",
             v2k_convert_accel_names[c.accel]);
  return v2k_convert_run (&c, err);
}

/* Converts; under 'auto' a failed conversion falls back to SATA + e1000e
 * with the reason recorded, under 'required' it fails the cutover (the
 * source stays off, the targets stay as the final sync made them). */
static int
convert_guest (struct v2k_session *s, const struct v2k_cutover_opts *o, FILE *out,
               struct v2k_error *err)
{
  if (v2k_step_convert (s, o->convert_accel, out, err) == 0)
    return 0;
  if (o->convert == CONVERT_REQUIRED || err->code == V2K_EXIT_INTERRUPTED ||
      s->m->conversion.committing)
    return -1;
  v2k_set_str (&s->m->conversion.fallback, err->message);
  v2k_session_event (s, EV_WARN, NULL, "convert.fallback",
                     json_pack ("{s:s, s:s}", "reason", err->message, "uses", "sata+e1000e"));
  if (out)
    fprintf (out, "conversion failed, so the guest keeps SATA and e1000e: %s\n", err->message);
  memset (err, 0, sizeof *err);
  return v2k_session_save (s, err);
}

/* ---- the domain ---- */

static int
write_xml (struct v2k_session *s, const struct cutover_plan *p, struct v2k_error *err)
{
  CLEANUP_FREE char *dir = NULL, *path = NULL;
  /* The file is named after the domain, made safe for a file system. */
  CLEANUP_FREE char *safe = v2k_safe_name (p->name);
  if (!safe || asprintf (&dir, "%s/artifacts", s->workdir) < 0 ||
      asprintf (&path, "%s/%s.xml", dir, safe) < 0) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  if (v2k_mkdir_p (dir, 0700, err) == -1 ||
      v2k_write_file_atomic (path, p->xml, strlen (p->xml), 0600, err) == -1)
    return -1;
  struct v2k_libvirt_plan *lv = &s->m->target.libvirt;
  v2k_set_str (&lv->xml_path, path);
  v2k_set_str (&lv->domain_name, p->name);
  return 0;
}

static int
define_domain (struct v2k_session *s, const struct v2k_cutover_opts *o, struct cutover_plan *p,
               struct v2k_error *err)
{
  char uuid[VIR_UUID_STRING_BUFLEN];
  double t0 = v2k_monotonic_seconds ();
  if (v2k_targets_check (s->m, NULL, NULL, 10, err) == -1)
    return -1;
  if (v2k_libvirt_define (p->conn, p->xml, uuid, err) == -1)
    return -1;
  v2k_crashpoint ("cutover:defined");
  struct v2k_libvirt_plan *lv = &s->m->target.libvirt;
  v2k_set_str (&lv->domain_uuid, uuid);
  v2k_set_str (&lv->uri, v2k_libvirt_default_uri (o->libvirt_uri));
  s->m->cutover.defined = true;
  v2k_session_event (s, EV_INFO, NULL, "domain.defined",
                     json_pack ("{s:s, s:s, s:s, s:s, s:b, s:f}", "name", p->name, "uuid", uuid,
                                "uri", lv->uri, "xml", lv->xml_path, "redefined", p->exists,
                                "seconds", v2k_monotonic_seconds () - t0));
  return v2k_session_save (s, err);
}

static int
start_domain (struct v2k_session *s, struct cutover_plan *p, struct v2k_error *err)
{
  bool was_running;
  double t0 = v2k_monotonic_seconds ();
  if (v2k_libvirt_start (p->conn, p->name, &was_running, err) == -1)
    return -1;
  s->m->cutover.started = true;
  v2k_session_event (s, EV_INFO, NULL, "domain.started",
                     json_pack ("{s:s, s:b, s:f}", "name", p->name, "already_running", was_running,
                                "seconds", v2k_monotonic_seconds () - t0));
  return v2k_session_save (s, err);
}

static json_t *
cutover_summary (struct v2k_session *s, const struct cutover_plan *p, const struct v2k_cutover_opts *o,
                 int removed)
{
  const struct v2k_manifest *m = s->m;
  const struct v2k_libvirt_plan *lv = &m->target.libvirt;
  json_t *j = json_pack ("{s:b, s:s, s:{s:s?, s:f}, s:f, s:i, s:{s:b, s:s?}}",
                         "ok", 1, "provider", v2k_provider_names[o->provider],
                         "shutdown", "policy", m->cutover.shutdown,
                         "seconds", (double) m->cutover.shutdown_ms / 1000.0,
                         "final_sync_seconds", (double) m->cutover.final_sync_ms / 1000.0,
                         "snapshots_removed", removed,
                         "conversion", "converted", m->conversion.converted,
                         "fallback", m->conversion.fallback);
  if (o->provider == PROVIDER_LIBVIRT)
    json_object_set_new (j, "domain",
                         json_pack ("{s:s, s:s?, s:s, s:s?, s:s, s:b, s:b, s:i}",
                                    "name", p->name, "uuid", lv->domain_uuid, "uri", lv->uri ? lv->uri : "",
                                    "xml", lv->xml_path, "state", v2k_libvirt_state (p->conn, p->name),
                                    "defined", m->cutover.defined, "started", m->cutover.started,
                                    "domains_named", v2k_libvirt_count (p->conn, p->name)));
  else if (o->provider == PROVIDER_CLOUD)
    json_object_set_new (j, "cloud", v2k_cloud_summary (m));
  return j;
}

int
v2k_step_cutover (struct v2k_session *s, const struct v2k_conn_args *conn,
                  const struct v2k_cutover_opts *o, const struct v2k_sync_opts *so,
                  bool progress_bar, FILE *out, json_t **result, struct v2k_error *err)
{
  struct v2k_manifest *m = s->m;
  struct cutover_plan p = { 0 };
  int rc = -1, removed = 0;
  if (preflight (s, o, &p, err) == -1)
    goto out;
  v2k_session_step (s, PHASE_CUTOVER, STEP_RUNNING);
  v2k_session_event (s, EV_INFO, NULL, "cutover.preflight",
                     json_pack ("{s:s, s:s, s:s, s:s, s:b, s:s}", "domain", p.name,
                                "uri", v2k_libvirt_default_uri (o->libvirt_uri),
                                "shutdown", v2k_shutdown_names[o->shutdown],
                                "disk_bus", v2k_disk_bus_names[p.disk_bus], "start", o->start,
                                "convert", p.convert ? v2k_convert_mode_names[o->convert] : "no"));
  if (v2k_session_save (s, err) == -1 || shutdown_source (s, o, out, err) == -1)
    goto out;
  if (final_sync (s, conn, so, progress_bar, out, err) == -1)
    goto out;
  s->phase = PHASE_CUTOVER;
  /* A started guest writes to the targets, and a converted one differs
   * from the source: compare them before either. */
  if (o->verify && !m->cutover.defined && !m->cloud.vm_id && !m->conversion.converted &&
      !m->conversion.committing) {
    if (v2k_step_verify (s, conn, o->verify, out, err) == -1)
      goto out;
    s->phase = PHASE_CUTOVER;
  }
  if (p.convert && convert_guest (s, o, out, err) == -1)
    goto out;
  s->phase = PHASE_CUTOVER;
  if (o->provider == PROVIDER_LIBVIRT) {
    if (domain_xml (s, o, &p, err) == -1 || write_xml (s, &p, err) == -1)
      goto out;
    /* Defined again on a re-run: the domain is ours (preflight), and the
     * XML may have changed, for example after a conversion. */
    if (define_domain (s, o, &p, err) == -1)
      goto out;
    if (o->start && start_domain (s, &p, err) == -1)
      goto out;
  }
  else if (o->provider == PROVIDER_CLOUD) {
    struct v2k_register_opts ro = o->cloud;
    ro.start = o->start;
    p.reg.virtio = m->conversion.converted;
    if (v2k_register_apply (&p.reg, &ro, err) == -1)
      goto out;
  }
  if (!o->keep_snapshots && !m->cutover.snapshots_removed) {
    if (v2k_step_remove_snapshots (s, conn->task_timeout > 0 ? conn->task_timeout : 3600,
                                   &removed, err) == -1)
      goto out;
    m->cutover.snapshots_removed = true;
  }
  s->phase = PHASE_CUTOVER;
  v2k_session_step (s, PHASE_CUTOVER, STEP_DONE);
  m->phase = PHASE_DONE;
  if (v2k_session_save (s, err) == -1)
    goto out;
  json_t *sum = cutover_summary (s, &p, o, removed);
  v2k_session_event (s, EV_INFO, NULL, "cutover.done", json_incref (sum));
  if (out && o->provider == PROVIDER_LIBVIRT)
    fprintf (out, "cutover done: domain %s (%s) %s at %s; XML %s\n", p.name,
             m->target.libvirt.domain_uuid, m->cutover.started ? "started" : "defined",
             m->target.libvirt.uri, m->target.libvirt.xml_path);
  else if (out && o->provider == PROVIDER_CLOUD)
    fprintf (out, "cutover done: cloud VM %s (%s) registered%s\n", m->cloud.vm_name, m->cloud.vm_id,
             m->cloud.started ? " and started" : "");
  else if (out)
    fprintf (out, "cutover done: the targets are final%s; register them with 'register'\n",
             m->conversion.converted ? " and converted" : "");
  if (result)
    *result = sum;
  else
    json_decref (sum);
  rc = 0;
 out:
  plan_free (&p);
  return rc;
}

/* ---- the command ---- */

static void
cutover_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR cutover [--shutdown guest|poweroff|manual]\n"
           "                     [--shutdown-timeout SEC] [--force-poweroff]\n"
           "                     [--define-only] [--start] [--libvirt-uri URI] [--name NAME]\n"
           "                     [--disk-bus virtio-scsi|virtio|sata] [--nic-model virtio|e1000e]\n"
           "                     [--net-map SRC=bridge:BR|network:NET …] [--keep-snapshots]\n"
           "\n"
           "1. Checks everything that can be refused (base sync done, every target the\n"
           "   one synced, networks mapped, libvirt reachable, the domain name free)\n"
           "   before the source is touched.\n"
           "2. Stops the source VM: guest shutdown, power-off, or checks that it is off.\n"
           "3. Takes the final snapshot and copies the final delta.\n"
           "4. Writes DIR/artifacts/<name>.xml and defines it in libvirt (validated),\n"
           "   and leaves it off (the default) or starts it (--start; v1's workflow\n"
           "   spells it 'cutover --define-only --start').\n"
           "5. Removes this run's snapshots, unless --keep-snapshots.\n"
           "Re-running after a failure continues from the step that failed. The source\n"
           "is never powered back on, and target disks are never deleted.\n"
           "\n"
           "  --json               print a JSON summary\n"
           "  -h, --help\n"
           "\n" V2K_CUTOVER_HELP "\n" V2K_SYNC_TUNING_HELP "\n" V2K_CONN_HELP);
}

enum { OPT_JSON = OPT_CONN_LAST };

int
cmd_cutover (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    V2K_SYNC_TUNING_OPTIONS,
    V2K_CUTOVER_OPTIONS,
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  struct v2k_sync_opts so;
  struct v2k_cutover_opts co;
  v2k_sync_opts_init (&so);
  v2k_cutover_opts_init (&co);
  int rc = -1, c;
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    int handled = v2k_conn_getopt (c, optarg, &conn, err);
    if (handled == 0)
      handled = v2k_sync_getopt (c, optarg, &so, err);
    if (handled == 0)
      handled = v2k_cutover_getopt (c, optarg, &co, err);
    if (handled == -1)
      goto done;
    if (handled)
      continue;
    switch (c) {
    case OPT_JSON: g->json = true; break;
    case 'h': cutover_help (stdout); rc = 0; goto done;
    default: v2k_usage_error (err, "cutover", "%s", argv[optind - 1]); goto done;
    }
  }
  if (optind != argc) {
    v2k_usage_error (err, "cutover", "unexpected argument '%s'", argv[optind]);
    goto done;
  }
  if (co.force_poweroff && co.shutdown != SHUTDOWN_GUEST) {
    v2k_error_set (err, V2K_EXIT_USAGE, "cutover: --force-poweroff belongs to --shutdown guest");
    goto done;
  }
  if (v2k_cutover_define_only_check (&co, "cutover", err) == -1)
    goto done;

  struct v2k_session s;
  json_t *sum = NULL;
  v2k_signals_install ();
  if (v2k_session_open (g, "cutover", true, &conn, &s, err) == 0)
    rc = v2k_step_cutover (&s, &conn, &co, &so, !g->quiet && !g->json && isatty (2),
                           g->json || g->quiet ? NULL : stdout, &sum, err);
  v2k_session_close (&s, rc, err);
  if (rc == 0 && g->json) {
    json_dumpf (sum, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
  }
  json_decref (sum);
 done:
  v2k_cutover_opts_free (&co);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
