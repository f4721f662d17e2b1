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
#include "steps.h"
#include "../util/getopt.h"

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
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
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
  if (v2k_session_open (g, "snapshot", true, &conn, &s, err) == -1)
    goto out;
  struct v2k_snapshot_opts so = { .kind = kind, .name = name, .quiesce = quiesce,
                                  .allow_running = allow_running,
                                  .task_timeout = conn.task_timeout };
  const struct v2k_snapshot *snap;
  bool adopted;
  if (v2k_step_snapshot (&s, &so, &snap, &adopted, err) == -1)
    goto out;
  if (g->json) {
    json_t *sj = v2k_snapshot_json (snap, s.m);
    json_object_set_new (sj, "ok", json_true ());
    json_object_set_new (sj, "adopted", json_boolean (adopted));
    json_dumpf (sj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
    json_decref (sj);
  }
  else
    printf ("%s %s%s\n", snap->moref, snap->name, adopted ? " (adopted after an interrupted run)" : "");
  rc = 0;
 out:
  v2k_session_close (&s, rc, err);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
