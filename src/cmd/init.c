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
           "  --vm SPEC               vm-123, an inventory path DC/vm/folder/name, or a name\n"
           "  --dst DIR               where file targets go by default (<dst>/<vm>-disk<N>.<fmt>)\n"
           "  --workdir-root DIR      create the workdir under DIR instead of /var/lib/ablestack-v2k\n"
           "  --target-format F       qcow2 (default) or raw\n"
           "  --target-storage S      file (default), block or rbd\n"
           "  --target-map DISK=PATH  per disk (id like scsi0:0); required for block (/dev/…)\n"
           "                          and rbd (rbd:pool/image). Repeatable\n"
           "  --transport T           vddk (default), file or nbd\n"
           "  --vddk-libdir DIR       the VDDK install (or VDDK_LIBDIR)\n"
           "  --vddk-thumbprint TP    ESXi thumbprint for VDDK (default: the host's, from vSphere)\n"
           "  --vddk-transports LIST  VDDK transport modes (default nbdssl:nbd)\n"
           "  --datastore-map NAME=DIR  a datastore reachable at DIR, for --transport file. Repeatable\n"
           "  --source-nbd URI        for --transport nbd (experts and tests); {key} in it\n"
           "                          becomes each disk's device key\n"
           "  --ceph-conf FILE        rbd storage: the Ceph configuration (default /etc/ceph/ceph.conf)\n"
           "  --ceph-id ID            rbd storage: the client id (default admin)\n"
           "  --json                  print {\"ok\":true,\"workdir\":…}\n"
           "  -h, --help\n"
           "\n" V2K_CONN_HELP);
}

enum {
  OPT_VM = OPT_CONN_LAST, OPT_DST, OPT_ROOT, OPT_FORMAT, OPT_STORAGE, OPT_TMAP, OPT_TRANSPORT,
  OPT_VDDK_LIBDIR, OPT_VDDK_TP, OPT_VDDK_TRANSPORTS, OPT_DSMAP, OPT_SOURCE_NBD, OPT_JSON,
  OPT_CEPH_CONF, OPT_CEPH_ID,
};

static int
enum_arg (const char *opt, const char *arg, const char *const *names, int *out,
          struct v2k_error *err)
{
  for (int i = 0; names[i]; i++)
    if (strcmp (names[i], arg) == 0) {
      *out = i;
      return 0;
    }
  struct strbuf b = { 0 };
  for (int i = 0; names[i]; i++)
    sb_addf (&b, "%s%s", i ? ", " : "", names[i]);
  v2k_error_set (err, V2K_EXIT_USAGE, "%s: '%s' is not one of %s", opt, arg, b.s);
  sb_free (&b);
  return -1;
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

int
cmd_init (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    { "vm", required_argument, NULL, OPT_VM },
    { "dst", required_argument, NULL, OPT_DST },
    { "workdir-root", required_argument, NULL, OPT_ROOT },
    { "target-format", required_argument, NULL, OPT_FORMAT },
    { "target-storage", required_argument, NULL, OPT_STORAGE },
    { "target-map", required_argument, NULL, OPT_TMAP },
    { "transport", required_argument, NULL, OPT_TRANSPORT },
    { "vddk-libdir", required_argument, NULL, OPT_VDDK_LIBDIR },
    { "vddk-thumbprint", required_argument, NULL, OPT_VDDK_TP },
    { "vddk-transports", required_argument, NULL, OPT_VDDK_TRANSPORTS },
    { "datastore-map", required_argument, NULL, OPT_DSMAP },
    { "source-nbd", required_argument, NULL, OPT_SOURCE_NBD },
    { "json", no_argument, NULL, OPT_JSON },
    { "ceph-conf", required_argument, NULL, OPT_CEPH_CONF },
    { "ceph-id", required_argument, NULL, OPT_CEPH_ID },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  struct v2k_plan_args plan = { .format = FORMAT_QCOW2, .storage = STORAGE_FILE,
                                .transport = TRANSPORT_VDDK };
  const char *vm_spec = NULL, *root = V2K_WORKDIR_ROOT;
  struct v2k_soap *soap = NULL;
  struct v2k_manifest *m = NULL;
  struct v2k_inventory_report report = { 0 };
  char *moref = NULL, *path = NULL, *workdir = NULL;
  int rc = -1, c;

  optind = 0;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
    int handled = v2k_conn_getopt (c, optarg, &conn, err);
    if (handled == -1)
      goto out;
    if (handled)
      continue;
    switch (c) {
    case OPT_VM: vm_spec = optarg; break;
    case OPT_DST: plan.dst = optarg; break;
    case OPT_ROOT: root = optarg; break;
    case OPT_FORMAT:
      if (enum_arg ("--target-format", optarg, v2k_format_names, &plan.format, err) == -1)
        goto out;
      break;
    case OPT_STORAGE:
      if (enum_arg ("--target-storage", optarg, v2k_storage_names, &plan.storage, err) == -1)
        goto out;
      break;
    case OPT_TRANSPORT:
      if (enum_arg ("--transport", optarg, v2k_transport_names, &plan.transport, err) == -1)
        goto out;
      break;
    case OPT_TMAP:
      if (push (&plan.target_map, &plan.n_target_map, optarg) == -1)
        goto oom;
      break;
    case OPT_DSMAP:
      if (push (&plan.datastore_map, &plan.n_datastore_map, optarg) == -1)
        goto oom;
      break;
    case OPT_VDDK_LIBDIR: plan.vddk_libdir = optarg; break;
    case OPT_VDDK_TP: plan.vddk_thumbprint = optarg; break;
    case OPT_VDDK_TRANSPORTS: plan.vddk_transports = optarg; break;
    case OPT_SOURCE_NBD: plan.source_nbd = optarg; break;
    case OPT_CEPH_CONF: plan.ceph_conf = optarg; break;
    case OPT_CEPH_ID: plan.ceph_id = optarg; break;
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
  if (!vm_spec || !*vm_spec) {
    v2k_error_set (err, V2K_EXIT_USAGE, "init needs --vm NAME|MOREF|INVENTORY/PATH");
    goto out;
  }
  if (!plan.vddk_libdir)
    plan.vddk_libdir = getenv ("VDDK_LIBDIR");
  if (v2k_plan_check_args (&plan, err) == -1)
    goto out;

  struct v2k_vsphere_opts vopts;
  if (v2k_conn_finish (&conn, &vopts, err) == -1)
    goto out;
  if (!(soap = v2k_soap_connect (&vopts, err)))
    goto out;
  if (v2k_vm_find (soap, vm_spec, &moref, &path, err) == -1)
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
  if (v2k_plan_apply (&plan, m, err) == -1)
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

  if (create_workdir (g, root, m->source.vm.name, run_id, &workdir, err) == -1)
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
  if (g->json) {
    json_t *out = json_pack ("{s:b, s:s, s:s}", "ok", 1, "workdir", workdir, "run_id", run_id);
    json_dumpf (out, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
    json_decref (out);
  }
  else
    printf ("%s\n", workdir);
  memset (err, 0, sizeof *err);
  rc = 0;
  goto out;

 oom:
  v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
 out:
  v2k_inventory_report_free (&report);
  v2k_manifest_free (m);
  v2k_soap_close (soap);
  v2k_conn_args_free (&conn);
  free (plan.target_map);
  free (plan.datastore_map);
  free (moref);
  free (path);
  free (workdir);
  return rc == 0 ? 0 : err->code ? err->code : V2K_EXIT_INTERNAL;
}
