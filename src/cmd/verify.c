/* verify: compare every target with the snapshot it was copied from. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "session.h"
#include "steps.h"
#include "../util/signals.h"
#include "../util/units.h"
#include "../util/getopt.h"

static void
verify_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR verify [--sample N] [--snapshot final|incr|base]\n"
           "                     [connection options]\n"
           "\n"
           "Reads each target and the snapshot it was synced from, side by side through\n"
           "the same endpoints as the copy, and compares SHA-256 digests of every 4 MiB\n"
           "chunk (or of N random chunks with --sample). Reports the first differing\n"
           "ranges per disk, records the result in the manifest and the events, and exits\n"
           "11 on any difference.\n"
           "\n"
           "  --sample N        compare N random chunks per disk instead of all\n"
           "  --snapshot KIND   compare with this run's latest KIND snapshot (default: the\n"
           "                    latest snapshot still on vCenter, or, when the cutover\n"
           "                    removed them, the powered-off VM's own disks)\n"
           "  -h, --help\n"
           "\n" V2K_CONN_HELP);
}

enum { OPT_SAMPLE = OPT_CONN_LAST, OPT_SNAPSHOT };

int
cmd_verify (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    V2K_CONN_OPTIONS,
    { "sample", required_argument, NULL, OPT_SAMPLE },
    { "snapshot", required_argument, NULL, OPT_SNAPSHOT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_conn_args conn = { 0 };
  int64_t samples = 0;
  int kind = -1;
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
    case OPT_SAMPLE:
      if (v2k_parse_size ("--sample", optarg, 1, 1000000, &samples, err) == -1)
        return err->code;
      break;
    case OPT_SNAPSHOT:
      if ((kind = jm_enum_index (v2k_snapshot_kind_names, optarg)) < 0)
        return v2k_usage_error (err, "verify", "--snapshot: '%s' is not final, incr or base", optarg);
      break;
    case 'h': verify_help (stdout); return 0;
    default: return v2k_usage_error (err, "verify", "%s", argv[optind - 1]);
    }
  }
  if (optind != argc)
    return v2k_usage_error (err, "verify", "unexpected argument '%s'", argv[optind]);

  struct v2k_session s;
  int rc = -1;
  v2k_signals_install ();
  if (v2k_session_open (g, "verify", true, &conn, &s, err) == 0) {
    struct v2k_verify_opts vo = { .samples = samples, .kind = kind };
    rc = v2k_step_verify (&s, &conn, &vo, g->quiet ? NULL : stdout, err);
  }
  v2k_session_close (&s, rc, err);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
