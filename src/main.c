/* ablestack_v2k: warm migration of vSphere VMs to ABLESTACK (KVM).
 * This file holds the global options and the command table; each command
 * lives in src/cmd/<command>.c. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "config.h"
#include "cmd/cmd.h"
#include "state/jsonmap.h"
#include "util/getopt.h"

struct command {
  const char *name;
  v2k_command_fn run;
  const char *summary;
};

/* Only working commands are listed. */
static const struct command commands[] = {
  { "init", cmd_init, "read the VM's inventory and create the workdir" },
  { "cbt", cmd_cbt, "enable, inspect or reset Changed Block Tracking; list changed areas" },
  { "snapshot", cmd_snapshot, "take the base, incr or final migration snapshot" },
  { "sync", cmd_sync, "copy the base, incremental or final snapshot into the targets" },
  { "cutover", cmd_cutover, "stop the source, copy the final delta, define the libvirt domain" },
  { "convert", cmd_convert, "convert the copied guest to virtio (virt-v2v-in-place, overlay-safe)" },
  { "register", cmd_register, "register the copied VM in the ABLESTACK cloud (Mold/CloudStack)" },
  { "verify", cmd_verify, "compare every target with the snapshot it was synced from" },
  { "cleanup", cmd_cleanup, "stop this run's helpers and remove this run's snapshots" },
  { "run", cmd_run, "the whole migration in one command, cutting over when the delta is small" },
  { "copy", cmd_copy, "copy between NBD servers or image files with the engine (plumbing)" },
  { "status", cmd_status, "show a run's phase, per-disk progress and recent events" },
};

static void
main_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k [--workdir DIR] [--json] [-v|--verbose] [-q|--quiet]\n"
           "                     COMMAND [ARGS]\n"
           "\n"
           "Warm migration of VMware vSphere VMs to ABLESTACK (KVM/libvirt, Ceph).\n"
           "\n"
           "Commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out,
           "\n"
           "Global options (before the command):\n"
           "  --workdir DIR   the run's workdir (default: created by init under\n"
           "                  /var/lib/ablestack-v2k/<vm>/<run_id>/)\n"
           "  --json          machine-readable output; errors become a JSON object\n"
           "  -v, --verbose   debug lines on stderr: each helper's command line, each\n"
           "                  vCenter call with its time (never a secret)\n"
           "  -q, --quiet     no progress output\n"
           "  --version       print the version\n"
           "  -h, --help      show this help; COMMAND --help shows a command's\n"
           "\n"
           "Exit codes are listed in docs/exit-codes.md.\n");
}

int
v2k_parse_count (const char *option, const char *value, long max, long *out,
                 struct v2k_error *err)
{
  char *end;
  long v;
  if (value[0] < '0' || value[0] > '9' ||
      (v = strtol (value, &end, 10), *end != '\0') || v > max) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: '%s' is not a whole number from 0 to %ld",
                   option, value, max);
    return -1;
  }
  *out = v;
  return 0;
}

int
v2k_parse_enum (const char *opt, const char *arg, const char *const *names, int *out,
                struct v2k_error *err)
{
  int i = jm_enum_index (names, arg);
  if (i < 0) {
    char list[128] = "";
    for (int k = 0; names[k]; k++)
      snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", k ? ", " : "", names[k]);
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: '%s' is not one of %s", opt, arg, list);
    return -1;
  }
  *out = i;
  return 0;
}

int
v2k_usage_error (struct v2k_error *err, const char *command, const char *fmt, ...)
{
  char what[512];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (what, sizeof what, fmt, ap);
  va_end (ap);
  if (strncmp (what, "--", 2) == 0 || (what[0] == '-' && what[1] != '\0' && what[1] != ' '))
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: unknown option or missing value: %s "
                   "(see 'ablestack_v2k %s --help')", command, what, command);
  else
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: %s (see 'ablestack_v2k %s --help')", command,
                   what, command);
  return err->code;
}

/* -v: the lower layers' debug lines, on stderr (stdout stays the command's). */
static void
debug_to_stderr (const char *line)
{
  fprintf (stderr, "ablestack_v2k: debug: %s\n", line);
}

static void
report_error (const struct v2k_global *g, const struct v2k_error *err)
{
  if (g->json) {
    json_t *j = json_pack ("{s:b, s:{s:s, s:i, s:s}}", "ok", 0, "error",
                           "code", v2k_exit_name (err->code), "exit_code", err->code,
                           "message", err->message);
    json_dumpf (j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc ('\n', stdout);
    json_decref (j);
  }
  else
    fprintf (stderr, "ablestack_v2k: error: %s\n", err->message);
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "workdir", required_argument, NULL, 'w' },
    { "json", no_argument, NULL, 'j' },
    { "verbose", no_argument, NULL, 'v' },
    { "quiet", no_argument, NULL, 'q' },
    { "version", no_argument, NULL, 'V' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct v2k_global g = { 0 };
  struct v2k_error err = { 0 };
  int c;

  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "+vqh", opts)) != -1) {
    switch (c) {
    case 'w': g.workdir = optarg; break;
    case 'j': g.json = true; break;
    case 'v': g.verbose++; break;
    case 'q': g.quiet = true; break;
    case 'V':
      printf ("ablestack_v2k %s\n", V2K_VERSION);
      return 0;
    case 'h':
      main_help (stdout);
      return 0;
    default:
      v2k_error_set (&err, V2K_EXIT_USAGE,
                     "unknown global option or missing value: %s (see 'ablestack_v2k --help')",
                     argv[optind - 1]);
      report_error (&g, &err);
      return err.code;
    }
  }
  if (g.verbose > 0)
    v2k_debug_sink = debug_to_stderr;
  if (g.workdir && g.workdir[0] == '\0') {
    v2k_error_set (&err, V2K_EXIT_USAGE, "--workdir needs a directory path");
    report_error (&g, &err);
    return err.code;
  }
  if (optind >= argc) {
    v2k_error_set (&err, V2K_EXIT_USAGE, "no command given (see 'ablestack_v2k --help')");
    report_error (&g, &err);
    return err.code;
  }
  const char *name = argv[optind];
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp (commands[i].name, name) == 0) {
      int rc = commands[i].run (argc - optind, argv + optind, &g, &err);
      if (rc != 0)
        report_error (&g, &err);
      return rc;
    }
  }
  v2k_error_set (&err, V2K_EXIT_USAGE, "unknown command '%s' (see 'ablestack_v2k --help')", name);
  report_error (&g, &err);
  return err.code;
}
