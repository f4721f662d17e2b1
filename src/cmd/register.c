/* register: register the copied VM in the ABLESTACK cloud after a cutover
 * with --target-provider none; cutover --target-provider ablestack-cloud
 * calls the same step. The cloud option parsing lives here too. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cmd.h"
#include "session.h"
#include "steps.h"
#include "../util/signals.h"
#include "../util/units.h"
#include "../util/getopt.h"

void
v2k_cloud_opts_init (struct v2k_register_opts *o)
{
  memset (o, 0, sizeof *o);
  o->signature = -1;
  o->cpu_speed = 1000;
  o->on_failure = CLOUD_ON_FAILURE_ROLLBACK;
}

void
v2k_cloud_opts_free (struct v2k_register_opts *o)
{
  free (o->net_map);
  o->net_map = NULL;
  o->n_net_map = 0;
}

int
v2k_cloud_getopt (int c, const char *arg, struct v2k_register_opts *o, struct v2k_error *err)
{
  switch (c) {
  case OPT_CLOUD_ENDPOINT: o->creds.endpoint = arg; break;
  case OPT_CLOUD_API_KEY: o->creds.apikey = arg; break;
  case OPT_CLOUD_SECRET_FILE: o->creds.secret_file = arg; break;
  case OPT_CLOUD_CRED_FILE: o->creds.cred_file = arg; break;
  case OPT_CLOUD_CMK_PROFILE: o->creds.cmk_profile = arg; break;
  case OPT_CLOUD_CMK_CONFIG: o->creds.cmk_config = arg; break;
  case OPT_CLOUD_SIGNATURE:
    if (strcmp (arg, "auto") == 0)
      o->signature = -1;
    else if ((o->signature = jm_enum_index (v2k_cloud_alg_names, arg)) < 0) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--cloud-signature: '%s' is not auto, sha256, sha1 or sha512", arg);
      return -1;
    }
    break;
  case OPT_CLOUD_CA_FILE: o->ca_file = arg; break;
  case OPT_CLOUD_INSECURE: o->insecure = true; break;
  case OPT_CLOUD_ZONE: o->zone = arg; break;
  case OPT_CLOUD_OFFERING: o->service_offering = arg; break;
  case OPT_CLOUD_STORAGE: o->storage = arg; break;
  case OPT_CLOUD_DISK_OFFERING: o->disk_offering = arg; break;
  case OPT_CLOUD_HOST: o->host = arg; break;
  case OPT_CLOUD_ACCOUNT: o->account = arg; break;
  case OPT_CLOUD_DOMAIN: o->domain = arg; break;
  case OPT_CLOUD_PROJECT: o->project = arg; break;
  case OPT_CLOUD_NAME: o->name = arg; break;
  case OPT_CLOUD_CPU_SPEED:
    if (v2k_parse_size ("--cloud-cpu-speed", arg, 1, 100000, &o->cpu_speed, err) == -1)
      return -1;
    break;
  case OPT_CLOUD_JOB_TIMEOUT: {
    int64_t t;
    if (v2k_parse_size ("--cloud-job-timeout", arg, 1, 86400, &t, err) == -1)
      return -1;
    o->job_timeout = (int) t;
    break;
  }
  case OPT_CLOUD_ON_FAILURE:
    if (strcmp (arg, "rollback") == 0)
      o->on_failure = CLOUD_ON_FAILURE_ROLLBACK;
    else if (strcmp (arg, "keep") == 0)
      o->on_failure = CLOUD_ON_FAILURE_KEEP;
    else {
      v2k_error_set (err, V2K_EXIT_USAGE, "--on-failure: '%s' is not rollback or keep", arg);
      return -1;
    }
    break;
  case OPT_CLOUD_NET_MAP: {
    const char *eq = strrchr (arg, '=');
    if (!eq || eq == arg || !eq[1]) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--cloud-net-map: '%s' is not 'VMWARE NETWORK=<network id>'", arg);
      return -1;
    }
    const char **v = realloc (o->net_map, (o->n_net_map + 1) * sizeof *v);
    if (!v) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    o->net_map = v;
    v[o->n_net_map++] = arg;
    break;
  }
  default:
    return 0;
  }
  return 1;
}

static int
save_session (void *opaque, struct v2k_error *err)
{
  return v2k_session_save (opaque, err);
}

json_t *
v2k_cloud_summary (const struct v2k_manifest *m)
{
  const struct v2k_cloud_record *c = &m->cloud;
  json_t *vols = json_array ();
  for (size_t i = 0; i < c->n_volumes; i++)
    json_array_append_new (vols, json_pack ("{s:s, s:s?, s:s?, s:I}", "disk", c->volumes[i].disk,
                                            "volume_id", c->volumes[i].volume_id, "path", c->volumes[i].path,
                                            "device_id", (json_int_t) (i == 0 ? 0 : c->volumes[i].device_id)));
  return json_pack ("{s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:o}", "flavour", c->flavour, "algorithm",
                    c->algorithm, "vm_id", c->vm_id, "vm_name", c->vm_name, "step", c->step,
                    "started", c->started, "volumes", vols);
}

int
v2k_step_register (struct v2k_session *s, const struct v2k_register_opts *o, bool preflight_only,
                   json_t **result, struct v2k_error *err)
{
  struct v2k_register_ctx rc = { .m = s->m, .ev = &s->ev, .save = save_session, .opaque = s,
                                 .stop = &v2k_stop_requested, .virtio = s->m->conversion.converted };
  int r = v2k_register_preflight (&rc, o, err);
  if (r == 0 && !preflight_only)
    r = v2k_register_apply (&rc, o, err);
  v2k_register_close (&rc);
  if (r == 0 && result)
    *result = v2k_cloud_summary (s->m);
  return r;
}

static void
register_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR register [--start] [--preflight-only] [cloud options]\n"
           "\n"
           "Registers the copied VM in the ABLESTACK cloud (Mold), or in CloudStack 4.19+,\n"
           "after a cutover with --target-provider none: a read-only preflight, then every\n"
           "volume imported (root first), the VM deployed stopped with the source's NICs\n"
           "and MACs, the root volume made ROOT, the data disks attached, all verified,\n"
           "and the VM started with --start. Every id is recorded before the next step; a\n"
           "re-run resumes. A failure before the start rolls back unless --on-failure keep.\n"
           "\n"
           "  --start            start the VM once registered\n"
           "  --preflight-only   only the read-only checks\n"
           "  --json             print the result as JSON\n"
           "  -h, --help\n"
           "\n" V2K_CLOUD_HELP);
}

enum { OPT_START = 1700, OPT_PREFLIGHT, OPT_JSON };

int
cmd_register (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CLOUD_OPTIONS,
    { "start", no_argument, NULL, OPT_START },
    { "preflight-only", no_argument, NULL, OPT_PREFLIGHT },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_register_opts o;
  bool preflight_only = false;
  int rc = -1, c;
  v2k_cloud_opts_init (&o);
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    int handled = v2k_cloud_getopt (c, optarg, &o, err);
    if (handled == -1)
      goto done;
    if (handled)
      continue;
    switch (c) {
    case OPT_START: o.start = true; break;
    case OPT_PREFLIGHT: preflight_only = true; break;
    case OPT_JSON: g->json = true; break;
    case 'h': register_help (stdout); rc = 0; goto done;
    default: v2k_usage_error (err, "register", "%s", argv[optind - 1]); goto done;
    }
  }
  if (optind != argc) {
    v2k_usage_error (err, "register", "unexpected argument '%s'", argv[optind]);
    goto done;
  }
  struct v2k_session s;
  json_t *sum = NULL;
  v2k_signals_install ();
  if (v2k_session_open (g, "register", true, NULL, &s, err) == 0) {
    s.phase = PHASE_CUTOVER;
    for (size_t i = 0; i < s.m->n_disks; i++)
      if (s.m->disks[i].final.state != STEP_DONE) {
        v2k_error_set (err, V2K_EXIT_USAGE, "register needs the final sync done (disk %s is %s): run "
                       "cutover --target-provider none first", s.m->disks[i].id,
                       v2k_step_state_names[s.m->disks[i].final.state]);
        goto close;
      }
    rc = v2k_step_register (&s, &o, preflight_only, &sum, err);
    if (rc == 0 && g->json) {
      json_object_set_new (sum, "ok", json_true ());
      json_dumpf (sum, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
      fputc ('\n', stdout);
    }
    else if (rc == 0 && !g->quiet)
      printf ("%s: VM %s (%s) %s\n", preflight_only ? "preflight passed" : "registered",
              s.m->cloud.vm_name, s.m->cloud.vm_id ? s.m->cloud.vm_id : "not yet created",
              s.m->cloud.started ? "started" : "stopped");
  }
 close:
  v2k_session_close (&s, rc, err);
  json_decref (sum);
 done:
  v2k_cloud_opts_free (&o);
  return rc == 0 ? 0 : err->code;
}
