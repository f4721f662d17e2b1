/* verify: compare every target with the snapshot it was copied from. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "session.h"
#include "../transfer/source.h"
#include "../transfer/target.h"
#include "../transfer/verify.h"
#include "../util/fsutil.h"
#include "../util/signals.h"
#include "../util/units.h"

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
           "                    latest snapshot still on vCenter)\n"
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
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1) {
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
  bool owned = false;
  char *rundir = NULL;
  size_t differing = 0;
  v2k_signals_install ();
  if (v2k_session_open (g, "verify", true, &conn, &s, err) == -1)
    goto out;
  struct v2k_manifest *m = s.m;
  const struct v2k_snapshot *snap = v2k_manifest_latest_snapshot (m, kind);
  if (!snap) {
    v2k_error_set (err, V2K_EXIT_USAGE, "this run has no %s snapshot on vCenter to verify against",
                   kind < 0 ? "migration" : v2k_snapshot_kind_names[kind]);
    goto out;
  }
  if (!(rundir = v2k_rundir (s.workdir, &owned, err)))
    goto out;
  struct v2k_step *step = &m->phases.verify;
  char now[32];
  v2k_now_rfc3339 (now);
  step->state = STEP_RUNNING;
  v2k_set_str (&step->started, now);
  char mode[32];
  if (samples > 0)
    snprintf (mode, sizeof mode, "sample:%lld", (long long) samples);
  else
    snprintf (mode, sizeof mode, "full");
  for (size_t i = 0; i < m->n_disks; i++) {
    struct v2k_disk *d = &m->disks[i];
    const struct v2k_snapshot_disk *sd = NULL;
    for (size_t k = 0; k < snap->n_disks; k++)
      if (snap->disks[k].key == d->key)
        sd = &snap->disks[k];
    if (!sd) {
      v2k_error_set (err, V2K_EXIT_VSPHERE, "snapshot %s has no disk %s", snap->moref, d->id);
      goto out;
    }
    const char *url = m->source.vcenter.url, *host = strstr (url, "://");
    char hostbuf[256];
    snprintf (hostbuf, sizeof hostbuf, "%.*s", (int) strcspn (host ? host + 3 : url, "/"),
              host ? host + 3 : url);
    struct v2k_source_args sa = { .m = m, .disk = d, .snapshot = snap->moref,
                                  .file_name = sd->file_name, .rundir = rundir, .workdir = s.workdir,
                                  .password = conn.password, .username = conn.username,
                                  .vcenter_host = hostbuf, .connections = 2 };
    struct v2k_target_args ta = { .m = m, .disk = d, .rundir = rundir, .connections = 2,
                                  .ceph_conf = m->target.ceph_conf, .ceph_id = m->target.ceph_id,
                                  .ceph_timeout = 10 };
    struct v2k_server ssrv = { 0 }, dsrv = { 0 };
    struct v2k_endpoint *src = v2k_source_open (&sa, &ssrv, err), *dst = NULL;
    struct v2k_verify_result res;
    int r = -1;
    if (src && (dst = v2k_target_open (&ta, &dsrv, err)))
      r = v2k_verify (src, dst, d->capacity, 4 << 20, samples, (unsigned) time (NULL) ^ (unsigned) i,
                      &v2k_stop_requested, &res, err);
    v2k_endpoint_close (src);
    v2k_endpoint_close (dst);
    v2k_server_stop (&ssrv);
    v2k_server_stop (&dsrv);
    if (r == -1) {
      v2k_error_prefix (err, "verify disk %s", d->id);
      goto out;
    }
    v2k_now_rfc3339 (now);
    d->verify.state = res.nmismatch ? STEP_FAILED : STEP_DONE;
    v2k_set_str (&d->verify.snapshot, snap->moref);
    v2k_set_str (&d->verify.mode, mode);
    v2k_set_str (&d->verify.time, now);
    d->verify.bytes_checked = res.bytes_checked;
    d->verify.mismatches = (int64_t) res.nmismatch;
    json_t *ranges = json_array ();
    for (size_t k = 0; k < res.nfirst; k++)
      json_array_append_new (ranges, json_pack ("{s:I, s:I}", "start", (json_int_t) res.first[k].start,
                                                "length", (json_int_t) res.first[k].length));
    v2k_session_event (&s, res.nmismatch ? EV_ERROR : EV_INFO, d->id,
                       res.nmismatch ? "verify.mismatch" : "verify.ok",
                       json_pack ("{s:s, s:s, s:I, s:I, s:o}", "snapshot", snap->moref, "mode", mode,
                                  "bytes_checked", (json_int_t) res.bytes_checked,
                                  "mismatching_chunks", (json_int_t) res.nmismatch, "first", ranges));
    if (res.nmismatch) {
      if (differing++ == 0)
        v2k_error_set (err, V2K_EXIT_VERIFY,
                       "disk %s differs from %s in %zu chunk(s), first at offset %lld (%lld bytes)",
                       d->id, snap->moref, res.nmismatch, (long long) res.first[0].start,
                       (long long) res.first[0].length);
    }
    else if (!g->quiet)
      printf ("disk %s: identical to %s (%lld bytes checked, %s)\n", d->id, snap->moref,
              (long long) res.bytes_checked, mode);
    if (v2k_session_save (&s, err) == -1)
      goto out;
  }
  v2k_now_rfc3339 (now);
  step->state = differing ? STEP_FAILED : STEP_DONE;
  v2k_set_str (&step->finished, now);
  if (differing) {
    struct v2k_error saved = *err;
    if (v2k_session_save (&s, err) == -1)
      goto out;
    *err = saved;
    goto out;
  }
  if (v2k_session_save (&s, err) == -1)
    goto out;
  rc = 0;
 out:
  v2k_session_close (&s, rc, err);
  if (owned && rundir)
    rmdir (rundir);
  free (rundir);
  v2k_conn_args_free (&conn);
  return rc == 0 ? 0 : err->code;
}
