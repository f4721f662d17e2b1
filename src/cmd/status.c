/* status: what a run is doing, for operators and for ABLESTACK's poller. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>

#include "cmd.h"
#include "../state/status.h"
#include "../state/workdir.h"
#include "../util/getopt.h"

static void
status_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR status [--json] [--events N]\n"
           "\n"
           "Shows the run in DIR: the VM, the current phase and its state (idle,\n"
           "running with the pid, failed, done), each disk's progress with rate and\n"
           "ETA, CBT state, the last error and the last events. It takes no lock,\n"
           "so it works while another command runs.\n"
           "\n"
           "  --json       print the stable JSON object described in docs/status.md\n"
           "  --events N   include the last N events (default 20, 0 for none)\n"
           "  -h, --help   show this help\n");
}

int
cmd_status (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    { "json", no_argument, NULL, 'j' },
    { "events", required_argument, NULL, 'e' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  long nevents = 20;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    switch (c) {
    case 'j':
      g->json = true;
      break;
    case 'e':
      if (v2k_parse_count ("--events", optarg, 100000, &nevents, err) == -1)
        return err->code;
      break;
    case 'h':
      status_help (stdout);
      return V2K_EXIT_OK;
    default:
      return v2k_usage_error (err, "status", "%s", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return v2k_usage_error (err, "status", "unexpected argument '%s'", argv[optind]);
  if (!g->workdir) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "status needs --workdir DIR (the path that init printed), "
                   "given before the command");
    return err->code;
  }
  if (v2k_workdir_check (g->workdir, err) == -1)
    return err->code;
  json_t *status = v2k_status_build (g->workdir, (size_t) nevents, err);
  if (!status)
    return err->code;
  if (g->json) {
    json_dumpf (status, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
  }
  else
    v2k_status_print_text (stdout, status);
  json_decref (status);
  return V2K_EXIT_OK;
}
