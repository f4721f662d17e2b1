/* init: read the VM's inventory from vSphere, plan its targets, and create
 * the workdir with manifest.json and events.log. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>

#include "cmd.h"
#include "steps.h"
#include "../config.h"
#include "../state/events.h"
#include "../state/manifest.h"
#include "../state/plan.h"
#include "../state/workdir.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"
#include "../util/strbuf.h"
#include "../vsphere/connopts.h"
#include "../vsphere/inventory.h"
#include "../util/getopt.h"

static void
init_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k [--workdir DIR] init --vm NAME|MOREF|PATH --vcenter URL --dst DIR\n"
           "                     [options]\n"
           "\n"
           "Reads the VM's inventory, refuses disks that cannot be tracked, plans the\n"
           "targets and creates the workdir (default /var/lib/ablestack-v2k/<vm>/<run_id>/,\n"
           "or --workdir). Prints the workdir path. No credentials are stored.\n"
           "\n"
           V2K_INIT_HELP
           "  --json                  print {\"ok\":true,\"workdir\":…}\n"
           "  -h, --help\n"
           "\n" V2K_CONN_HELP);
}


static int
push (const char ***arr, size_t *n, const char *v)
{
  const char **p = realloc (*arr, (*n + 1) * sizeof *p);
  if (!p)
    return -1;
  *arr = p;
  p[(*n)++] = v;
  return 0;
}

static int
create_workdir (struct v2k_global *g, const char *root, const char *vm, const char *run_id,
                char **out, struct v2k_error *err)
{
  if (!g->workdir) {
    *out = v2k_workdir_create (root, vm, run_id, err);
    return *out ? 0 : -1;
  }
  if (mkdir (g->workdir, 0700) < 0) {
    if (errno != EEXIST) {
      v2k_error_errno (err, V2K_EXIT_WORKDIR, "creating workdir %s", g->workdir);
      return -1;
    }
    CLEANUP_FREE char *manifest = NULL;
    if (asprintf (&manifest, "%s/%s", g->workdir, V2K_MANIFEST_FILE) < 0)
      manifest = NULL;
    if (manifest && access (manifest, F_OK) == 0) {
      v2k_error_set (err, V2K_EXIT_WORKDIR,
                     "%s already holds a run; use it with the other commands, or pick a new --workdir",
                     g->workdir);
      return -1;
    }
    chmod (g->workdir, 0700);
  }
  *out = strdup (g->workdir);
  return 0;
}

static void
init_phases (struct v2k_manifest *m)
{
  char now[32];
  v2k_now_rfc3339 (now);
  m->phase = PHASE_INIT;
  m->phases.init.state = STEP_DONE;
  m->phases.init.started = strdup (now);
  m->phases.init.finished = strdup (now);
}

void
v2k_init_opts_init (struct v2k_init_opts *o)
{
  memset (o, 0, sizeof *o);
  o->plan.format = FORMAT_QCOW2;
  o->plan.storage = STORAGE_FILE;
  o->plan.transport = TRANSPORT_VDDK;
  o->root = V2K_WORKDIR_ROOT;
}

void
v2k_init_opts_free (struct v2k_init_opts *o)
{
  free (o->plan.target_map);
  free (o->plan.datastore_map);
  o->plan.target_map = o->plan.datastore_map = NULL;
}

int
v2k_init_getopt (int c, const char *arg, struct v2k_init_opts *o, struct v2k_error *err)
{
  struct v2k_plan_args *plan = &o->plan;
  int r = 0;
  switch (c) {
  case OPT_INIT_VM: o->vm_spec = arg; break;
  case OPT_INIT_DST: plan->dst = arg; break;
  case OPT_INIT_ROOT: o->root = arg; break;
  case OPT_INIT_FORMAT: r = v2k_parse_enum ("--target-format", arg, v2k_format_names, &plan->format, err); break;
  case OPT_INIT_STORAGE: r = v2k_parse_enum ("--target-storage", arg, v2k_storage_names, &plan->storage, err); break;
  case OPT_INIT_TRANSPORT: r = v2k_parse_enum ("--transport", arg, v2k_transport_names, &plan->transport, err); break;
  case OPT_INIT_TMAP:
  case OPT_INIT_DSMAP:
    if (c == OPT_INIT_TMAP ? push (&plan->target_map, &plan->n_target_map, arg)
        : push (&plan->datastore_map, &plan->n_datastore_map, arg)) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    break;
  case OPT_INIT_VDDK_LIBDIR: plan->vddk_libdir = arg; break;
  case OPT_INIT_VDDK_TP: plan->vddk_thumbprint = arg; break;
  case OPT_INIT_VDDK_TRANSPORTS: plan->vddk_transports = arg; break;
  case OPT_INIT_SOURCE_NBD: plan->source_nbd = arg; break;
  case OPT_INIT_CEPH_CONF: plan->ceph_conf = arg; break;
  case OPT_INIT_CEPH_ID: plan->ceph_id = arg; break;
  default: return 0;
  }
  return r == -1 ? -1 : 1;
}

int
v2k_init_check (struct v2k_init_opts *o, struct v2k_error *err)
{
  if (!o->vm_spec || !*o->vm_spec) {
    v2k_error_set (err, V2K_EXIT_USAGE, "init needs --vm NAME|MOREF|INVENTORY/PATH");
    return -1;
  }
  if (!o->plan.vddk_libdir)
    o->plan.vddk_libdir = getenv ("VDDK_LIBDIR");
  return v2k_plan_check_args (&o->plan, err);
}

int
v2k_step_init (struct v2k_global *g, struct v2k_init_opts *o, struct v2k_conn_args *conn,
               char **workdir_out, char **run_id_out, struct v2k_error *err)
{
  struct v2k_soap *soap = NULL;
  struct v2k_manifest *m = NULL;
  struct v2k_inventory_report report = { 0 };
  char *moref = NULL, *path = NULL, *workdir = NULL;
  int rc = -1;

  struct v2k_vsphere_opts vopts;
  if (v2k_conn_finish (conn, &vopts, err) == -1)
    goto out;
  if (!(soap = v2k_soap_connect (&vopts, err)))
    goto out;
  if (v2k_vm_find (soap, o->vm_spec, &moref, &path, err) == -1)
    goto out;
  if (!(m = calloc (1, sizeof *m)))
    goto oom;
  if (v2k_inventory_read (soap, moref, m, &report, err) == -1)
    goto out;
  m->source.vm.inventory_path = path;
  path = NULL;
  if (report.nrefusals > 0) {
    struct strbuf b = { 0 };
    for (size_t i = 0; i < report.nrefusals; i++)
      sb_addf (&b, "%s%s", i ? "; " : "", report.refusals[i]);
    v2k_error_set (err, V2K_EXIT_VSPHERE, "VM %s cannot be migrated: %s", m->source.vm.name, b.s);
    sb_free (&b);
    goto out;
  }
  if (m->n_disks == 0) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "VM %s has no disks to migrate", m->source.vm.name);
    goto out;
  }
  /* VDDK checks the thumbprint of the server it connects to, which is the
   * one this session reached (server= is the vCenter, or the ESXi host
   * when connected directly), not the host the VM runs on. */
  const char *server_sha1 = v2k_soap_thumbprint_sha1 (soap);
  if (!o->plan.vddk_thumbprint && server_sha1 && *server_sha1)
    o->plan.vddk_thumbprint = server_sha1;
  int applied = v2k_plan_apply (&o->plan, m, err);
  if (o->plan.vddk_thumbprint == server_sha1)
    o->plan.vddk_thumbprint = NULL;   /* the session's, gone with it */
  if (applied == -1)
    goto out;

  char run_id[32], now[32];
  v2k_run_id_new (run_id);
  v2k_now_rfc3339 (now);
  m->schema = strdup (V2K_MANIFEST_SCHEMA);
  m->run.id = strdup (run_id);
  m->run.created = strdup (now);
  m->run.tool_version = strdup (V2K_VERSION);
  for (size_t i = 0; i < m->n_disks; i++)
    m->disks[i].cbt.enabled = false;
  init_phases (m);

  if (create_workdir (g, o->root, m->source.vm.name, run_id, &workdir, err) == -1)
    goto out;
  struct v2k_events ev = { .workdir = workdir, .run_id = run_id };
  if (vopts.insecure)
    v2k_event (&ev, EV_WARN, "init", NULL, "tls.insecure",
               json_pack ("{s:s}", "url", v2k_soap_url (soap)), err);
  if (v2k_manifest_save (m, workdir, err) == -1)
    goto out;
  json_t *snaps = json_array ();
  for (size_t i = 0; i < report.nuser_snapshots; i++)
    json_array_append_new (snaps, json_string (report.user_snapshots[i]));
  if (report.nuser_snapshots > 0)
    v2k_event (&ev, EV_WARN, "init", NULL, "vm.user_snapshots",
               json_pack ("{s:O, s:s}", "names", snaps,
                          "note", "existing snapshots stay; migration snapshots are separate"), err);
  v2k_event (&ev, EV_INFO, "init", NULL, "init.done",
             json_pack ("{s:s, s:s, s:s, s:i, s:i, s:s, s:s}", "vm", m->source.vm.name,
                        "moref", m->source.vm.moref, "vcenter", v2k_soap_url (soap),
                        "disks", (int) m->n_disks, "nics", (int) m->n_nics,
                        "target_storage", v2k_storage_names[m->target.storage],
                        "transport", v2k_transport_names[m->transport.kind]), err);
  json_decref (snaps);
  for (size_t i = 0; i < report.nuser_snapshots; i++)
    fprintf (stderr, "ablestack_v2k: warning: VM %s already has snapshot '%s'\n",
             m->source.vm.name, report.user_snapshots[i]);
  memset (err, 0, sizeof *err);
  *workdir_out = workdir;
  workdir = NULL;
  *run_id_out = strdup (run_id);
  rc = 0;
  goto out;

 oom:
  v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
 out:
  v2k_inventory_report_free (&report);
  v2k_manifest_free (m);
  v2k_soap_close (soap);
  free (moref);
  free (path);
  free (workdir);
  return rc;
}

enum { OPT_JSON = OPT_CONN_LAST };

int
cmd_init (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    V2K_INIT_OPTIONS,
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  struct v2k_init_opts io;
  char *workdir = NULL, *run_id = NULL;
  int rc = -1, c;

  v2k_init_opts_init (&io);
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    int handled = v2k_conn_getopt (c, optarg, &conn, err);
    if (handled == 0)
      handled = v2k_init_getopt (c, optarg, &io, err);
    if (handled == -1)
      goto out;
    if (handled)
      continue;
    switch (c) {
    case OPT_JSON: g->json = true; break;
    case 'h':
      init_help (stdout);
      rc = 0;
      goto out;
    default:
      v2k_usage_error (err, "init", "%s", argv[optind - 1]);
      goto out;
    }
  }
  if (optind < argc) {
    v2k_usage_error (err, "init", "unexpected argument '%s'", argv[optind]);
    goto out;
  }
  if (v2k_init_check (&io, err) == -1 || v2k_step_init (g, &io, &conn, &workdir, &run_id, err) == -1)
    goto out;
  if (g->json) {
    json_t *o = json_pack ("{s:b, s:s, s:s}", "ok", 1, "workdir", workdir, "run_id", run_id);
    json_dumpf (o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
    json_decref (o);
  }
  else
    printf ("%s\n", workdir);
  rc = 0;
 out:
  v2k_init_opts_free (&io);
  v2k_conn_args_free (&conn);
  free (workdir);
  free (run_id);
  return rc == 0 ? 0 : err->code ? err->code : V2K_EXIT_INTERNAL;
}
