/* convert: convert the copied guest to virtio with virt-v2v-in-place, on a
 * workdir whose final sync is done. cutover does the same step itself;
 * this command re-runs it on its own. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "session.h"
#include "steps.h"
#include "../kvm/convert.h"
#include "../util/signals.h"
#include "../util/getopt.h"

static void
convert_help (FILE *out)
{
  fprintf (out,
           "Usage: ablestack_v2k --workdir DIR convert [--convert-accel kvm|tcg] [--force]\n"
           "\n"
           "Converts the copied guest with virt-v2v-in-place: virtio drivers, fstab and\n"
           "bootloader, VMware Tools removed. It works on qcow2 overlays over the targets\n"
           "and commits them only when virt-v2v succeeds, so a failed or killed\n"
           "conversion leaves the targets exactly as the final sync made them; run it\n"
           "again to convert from a clean state. Needs the final sync done. A conversion\n"
           "that succeeded is not repeated unless --force. Run cutover afterwards to\n"
           "(re)define the domain with virtio.\n"
           "\n"
           "  --convert-accel kvm|tcg  how libguestfs runs (default: probed)\n"
           "  --force                  convert again a guest already converted\n"
           "  -h, --help\n");
}

enum { OPT_ACCEL = 1500, OPT_FORCE };

int
cmd_convert (int argc, char **argv, struct v2k_global *g, struct v2k_error *err)
{
  static const struct option opts[] = {
    { "convert-accel", required_argument, NULL, OPT_ACCEL },
    { "force", no_argument, NULL, OPT_FORCE },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int accel = ACCEL_PROBE, c;
  bool force = false;
  optind = 0;
  opterr = 0;
  while ((c = v2k_getopt (argc, argv, "h", opts)) != -1) {
    switch (c) {
    case OPT_ACCEL:
      if (v2k_parse_enum ("--convert-accel", optarg, v2k_convert_accel_names, &accel, err) == -1)
        return err->code;
      break;
    case OPT_FORCE: force = true; break;
    case 'h': convert_help (stdout); return 0;
    default: return v2k_usage_error (err, "convert", "%s", argv[optind - 1]);
    }
  }
  if (optind != argc)
    return v2k_usage_error (err, "convert", "unexpected argument '%s'", argv[optind]);

  struct v2k_session s;
  int rc = -1;
  char *blocker = NULL;
  v2k_signals_install ();
  if (v2k_session_open (g, "convert", true, NULL, &s, err) == -1)
    goto out;
  struct v2k_manifest *m = s.m;
  s.phase = PHASE_CUTOVER;
  for (size_t i = 0; i < m->n_disks; i++)
    if (m->disks[i].final.state != STEP_DONE) {
      v2k_error_set (err, V2K_EXIT_USAGE, "convert needs the final sync done (disk %s is %s): "
                     "run cutover, or snapshot final and sync final, first", m->disks[i].id,
                     v2k_step_state_names[m->disks[i].final.state]);
      goto out;
    }
  if (m->conversion.converted && !force) {
    if (!g->quiet)
      printf ("the guest is already converted (%s); --force converts again\n",
              m->conversion.finished ? m->conversion.finished : "");
    rc = 0;
    goto out;
  }
  blocker = v2k_convert_blocker (m);
  if (blocker) {
    v2k_error_set (err, V2K_EXIT_USAGE, "cannot convert: %s", blocker);
    goto out;
  }
  if (!m->conversion.committing)
    m->conversion.converted = false;
  v2k_set_str (&m->conversion.fallback, NULL);
  if (v2k_step_convert (&s, accel, g->quiet ? NULL : stdout, err) == -1)
    goto out;
  if (!g->quiet)
    printf ("converted: virtio drivers %s, %lld warning(s)%s\n",
            m->conversion.virtio ? "installed" : "not reported",
            (long long) m->conversion.warnings,
            m->cutover.defined ? "; run cutover again to redefine the domain with virtio" : "");
  rc = 0;
 out:
  free (blocker);
  v2k_session_close (&s, rc, err);
  return rc == 0 ? 0 : err->code;
}
