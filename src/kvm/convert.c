#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "convert.h"
#include "domain.h"
#include "../transfer/rbd.h"
#include "../util/cleanup.h"
#include "../util/crashpoint.h"
#include "../util/fsutil.h"
#include "../util/spawn.h"
#include "../util/strbuf.h"

const char *const v2k_convert_mode_names[] = { "auto", "required", "off", NULL };
const char *const v2k_convert_accel_names[] = { "kvm", "tcg", NULL };

static bool
in_path (const char *name)
{
  const char *path = getenv ("PATH");
  CLEANUP_FREE char *copy = strdup (path && *path ? path : "/usr/bin:/bin");
  char *save = NULL;
  for (char *dir = copy ? strtok_r (copy, ":", &save) : NULL; dir; dir = strtok_r (NULL, ":", &save)) {
    char full[4096];
    snprintf (full, sizeof full, "%s/%s", dir, name);
    if (access (full, X_OK) == 0)
      return true;
  }
  return false;
}

static char *
first_kernel (void)
{
  glob_t g;
  char *k = NULL;
  if (glob ("/boot/vmlinuz-*", 0, NULL, &g) == 0 && g.gl_pathc > 0)
    k = strdup (g.gl_pathv[g.gl_pathc - 1]);
  globfree (&g);
  return k;
}

static char *
line (const char *fmt, const char *a)
{
  char *s = NULL;
  if (asprintf (&s, fmt, a) < 0)
    s = NULL;
  return s;
}

char *
v2k_convert_blocker (const struct v2k_manifest *m)
{
  static const struct { const char *tool, *package; } tools[] = {
    { "virt-v2v-in-place", "virt-v2v" }, { "nbdkit", "nbdkit" }, { "qemu-img", "qemu-utils" },
  };
  for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
    if (!in_path (tools[i].tool)) {
      char *s = NULL;
      if (asprintf (&s, "%s is not installed (Debian: apt-get install %s)", tools[i].tool,
                    tools[i].package) < 0)
        s = NULL;
      return s;
    }
  CLEANUP_FREE char *kernel = first_kernel ();
  if (!kernel)
    return strdup ("libguestfs needs a kernel in /boot for its appliance "
                   "(Debian: apt-get install linux-image-amd64)");
  if (v2k_guest_is_windows (m)) {
    const char *vw = getenv ("VIRTIO_WIN");
    const char *td = getenv ("VIRT_TOOLS_DATA_DIR");
    if (!vw || !*vw)
      vw = "/usr/share/virtio-win";
    if (!td || !*td)
      td = "/usr/share/virt-tools";
    if (access (vw, R_OK) != 0)
      return line ("Windows conversion needs the virtio-win drivers: %s is missing; set "
                   "VIRTIO_WIN to the virtio-win ISO or directory", vw);
    char a[4096], b[4096];
    snprintf (a, sizeof a, "%s/rhsrvany.exe", td);
    snprintf (b, sizeof b, "%s/pvvxsvc.exe", td);
    if (access (a, R_OK) != 0 && access (b, R_OK) != 0)
      return line ("Windows conversion needs rhsrvany.exe or pvvxsvc.exe in %s (set "
                   "VIRT_TOOLS_DATA_DIR to the directory holding them)", td);
  }
  return NULL;
}

/* Waits for PID up to TIMEOUT seconds (or until *STOP); kills it then.
 * Returns its wait status, or -1 when it had to be killed. ON_TICK (may be
 * NULL) runs every poll. */
static int
wait_child (pid_t pid, double timeout, volatile sig_atomic_t *stop,
            void (*on_tick) (void *), void *opaque)
{
  double deadline = v2k_monotonic_seconds () + timeout;
  for (;;) {
    int status;
    pid_t r = waitpid (pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0 && errno != EINTR)
      return -1;
    if (on_tick)
      on_tick (opaque);
    if (v2k_monotonic_seconds () >= deadline || (stop && *stop)) {
      v2k_spawn_stop (pid, NULL, 2000);
      return -1;
    }
    struct timespec nap = { 0, 200 * 1000 * 1000 };
    nanosleep (&nap, NULL);
  }
}

int
v2k_convert_probe_accel (void)
{
  CLEANUP_FREE char *kernel = first_kernel ();
  if (!kernel || access ("/dev/kvm", R_OK | W_OK) != 0)
    return ACCEL_TCG;
  /* A kernel with no root panics and, with panic=-1 and -no-reboot, QEMU
   * exits 0 within a second or two under working KVM. Where nested KVM is
   * broken QEMU aborts (failed to set MSR …) or hangs. */
  const char *argv[] = { "qemu-system-x86_64", "-machine", "q35,accel=kvm", "-cpu", "host",
                         "-m", "256", "-nodefaults", "-display", "none", "-no-reboot",
                         "-kernel", kernel, "-append", "panic=-1 root=/dev/v2k-none", NULL };
  struct v2k_spawn sp = { .argv = argv };
  struct v2k_error err = { 0 };
  pid_t pid = v2k_spawn_start (&sp, &err);
  if (pid < 0)
    return ACCEL_TCG;
  int st = wait_child (pid, 20, NULL, NULL, NULL);
  return st >= 0 && WIFEXITED (st) && WEXITSTATUS (st) == 0 ? ACCEL_KVM : ACCEL_TCG;
}

static const char *
source_bus (int kind)
{
  switch (kind) {
  case CTRL_SCSI: return "scsi";
  case CTRL_IDE: return "ide";
  default: return "sata";   /* sata; nvme has no libvirt disk bus here */
  }
}

char *
v2k_convert_input_xml (const struct v2k_manifest *m, char *const *overlays)
{
  struct strbuf b = { 0 };
  sb_add (&b, "<domain type='kvm'>\n  <name>");
  sb_add_xml (&b, m->source.vm.name);
  sb_addf (&b, "</name>\n  <memory unit='MiB'>%lld</memory>\n  <vcpu>%lld</vcpu>\n",
           (long long) (m->source.vm.memory_mb > 0 ? m->source.vm.memory_mb : 1024),
           (long long) (m->source.vm.num_cpus > 0 ? m->source.vm.num_cpus : 1));
  sb_addf (&b, "  <os%s>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  <devices>\n",
           m->source.vm.firmware == FIRMWARE_EFI ? " firmware='efi'" : "");
  int sd = 0, hd = 0;
  for (size_t i = 0; i < m->n_disks; i++) {
    int kind = m->disks[i].controller.kind;
    char dev[8];
    if (kind == CTRL_IDE)
      snprintf (dev, sizeof dev, "hd%c", 'a' + hd++);
    else
      snprintf (dev, sizeof dev, "sd%c", 'a' + sd++);
    sb_add (&b, "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
            "      <source file='");
    sb_add_xml (&b, overlays[i]);
    sb_addf (&b, "'/>\n      <target dev='%s' bus='%s'/>\n    </disk>\n", dev, source_bus (kind));
  }
  for (size_t i = 0; i < m->n_nics; i++) {
    sb_add (&b, "    <interface type='network'>\n      <mac address='");
    sb_add_xml (&b, m->nics[i].mac);
    sb_add (&b, "'/>\n      <source network='");
    sb_add_xml (&b, m->nics[i].network ? m->nics[i].network : "default");
    sb_add (&b, "'/>\n    </interface>\n");
  }
  sb_add (&b, "  </devices>\n</domain>\n");
  return b.s;
}

/* ---- running it ---- */

static void
event (struct v2k_convert_ctx *c, enum v2k_event_level level, const char *name, json_t *detail)
{
  struct v2k_error ignored = { 0 };
  v2k_event (c->ev, level, "cutover", NULL, name, detail, &ignored);
}

static int
save (struct v2k_convert_ctx *c, struct v2k_error *err)
{
  return c->save (c->opaque, err);
}

/* The backing of a target as qemu names it, and its format. */
static char *
backing_name (const struct v2k_manifest *m, const struct v2k_disk *d, const char **fmt)
{
  *fmt = m->target.storage == STORAGE_FILE ? v2k_format_names[m->target.format] : "raw";
  if (m->target.storage != STORAGE_RBD)
    return strdup (d->target_path);
  char pool[256], image[256], *s = NULL;
  if (v2k_rbd_parse (d->target_path, pool, sizeof pool, image, sizeof image) == -1)
    return NULL;
  if (asprintf (&s, "rbd:%s/%s:id=%s:conf=%s", pool, image,
                m->target.ceph_id ? m->target.ceph_id : "admin",
                m->target.ceph_conf ? m->target.ceph_conf : "/etc/ceph/ceph.conf") < 0)
    s = NULL;
  return s;
}

static int
run_tool (const char *const *argv, const char *log, const char *what, struct v2k_error *err)
{
  struct v2k_spawn sp = { .argv = argv, .log_file = log };
  int status;
  if (v2k_spawn_run (&sp, &status, err) == -1)
    return -1;
  if (status != 0) {
    v2k_error_set (err, V2K_EXIT_TARGET, "%s failed (exit %d); see %s", what, status, log);
    return -1;
  }
  return 0;
}

struct progress {
  struct v2k_convert_ctx *c;
  const char *path;
  long offset;
  char last_error[1024];
  bool virtio;
  int64_t warnings;
};

/* Turns new lines of virt-v2v's --machine-readable file into events. */
static void
progress_tail (void *opaque)
{
  struct progress *p = opaque;
  FILE *fp = fopen (p->path, "r");
  if (!fp)
    return;
  if (fseek (fp, p->offset, SEEK_SET) == 0) {
    char buf[8192];
    while (fgets (buf, sizeof buf, fp)) {
      size_t n = strlen (buf);
      if (n == 0 || buf[n - 1] != '\n')
        break;                        /* a line still being written */
      p->offset += (long) n;
      json_t *j = json_loads (buf, 0, NULL);
      const char *type = json_string_value (json_object_get (j, "type"));
      const char *msg = json_string_value (json_object_get (j, "message"));
      if (type && msg) {
        bool warn = strcmp (type, "warning") == 0, error = strcmp (type, "error") == 0;
        if (strstr (msg, "virtio drivers installed"))
          p->virtio = true;
        if (warn)
          p->warnings++;
        if (error)
          snprintf (p->last_error, sizeof p->last_error, "%s", msg);
        event (p->c, error ? EV_ERROR : warn ? EV_WARN : EV_INFO,
               error ? "convert.error" : warn ? "convert.warning" : "convert.message",
               json_pack ("{s:s, s:s}", "type", type, "message", msg));
      }
      json_decref (j);
    }
  }
  fclose (fp);
}

static int
run_virt_v2v (struct v2k_convert_ctx *c, const char *dir, const char *xml_path,
              struct progress *p, struct v2k_error *err)
{
  CLEANUP_FREE char *mr = NULL, *log = NULL, *vw = NULL, *td = NULL;
  if (asprintf (&mr, "--machine-readable=file:%s", p->path) < 0 ||
      asprintf (&log, "%s/virt-v2v.log", dir) < 0) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  unlink (p->path);
  const char *env[6];
  size_t n = 0;
  env[n++] = "LIBGUESTFS_BACKEND=direct";
  if (c->accel == ACCEL_TCG)
    env[n++] = "LIBGUESTFS_BACKEND_SETTINGS=force_tcg";
  if (getenv ("VIRTIO_WIN") && asprintf (&vw, "VIRTIO_WIN=%s", getenv ("VIRTIO_WIN")) >= 0)
    env[n++] = vw;
  if (getenv ("VIRT_TOOLS_DATA_DIR") &&
      asprintf (&td, "VIRT_TOOLS_DATA_DIR=%s", getenv ("VIRT_TOOLS_DATA_DIR")) >= 0)
    env[n++] = td;
  env[n] = NULL;
  const char *argv[] = { "virt-v2v-in-place", "-i", "libvirtxml", mr, xml_path, NULL };
  struct v2k_spawn sp = { .argv = argv, .extra_env = env, .log_file = log };
  pid_t pid = v2k_spawn_start (&sp, err);
  if (pid < 0)
    return -1;
  event (c, EV_INFO, "convert.started",
         json_pack ("{s:s, s:i, s:s}", "accel", v2k_convert_accel_names[c->accel], "pid", (int) pid,
                    "log", log));
  v2k_crashpoint ("convert:running");
  /* Hours at most: a conversion that takes longer has hung. */
  int st = wait_child (pid, 4 * 3600, c->stop, progress_tail, p);
  progress_tail (p);
  if (st >= 0 && WIFEXITED (st) && WEXITSTATUS (st) == 0)
    return 0;
  if (c->stop && *c->stop)
    v2k_error_set (err, V2K_EXIT_INTERRUPTED, "guest conversion interrupted; the targets are "
                   "untouched, run the cutover again to convert");
  else
    v2k_error_set (err, V2K_EXIT_TARGET, "virt-v2v-in-place failed%s%s (see %s)",
                   p->last_error[0] ? ": " : "", p->last_error, log);
  return -1;
}

static int
fsync_target (const struct v2k_manifest *m, const struct v2k_disk *d, struct v2k_error *err)
{
  if (m->target.storage == STORAGE_RBD)
    return 0;                   /* qemu-img commit flushes librbd on close */
  int fd = open (d->target_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fsync (fd) < 0) {
    v2k_error_errno (err, V2K_EXIT_TARGET, "flushing %s", d->target_path);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  close (fd);
  return 0;
}

static void
overlays_free (char **o, size_t n)
{
  for (size_t i = 0; o && i < n; i++) {
    if (o[i])
      unlink (o[i]);
    free (o[i]);
  }
  free (o);
}

int
v2k_convert_run (struct v2k_convert_ctx *c, struct v2k_error *err)
{
  struct v2k_manifest *m = c->m;
  struct v2k_conversion *cv = &m->conversion;
  CLEANUP_FREE char *dir = NULL, *xml_path = NULL, *mr_path = NULL, *log = NULL;
  char **overlays = calloc (m->n_disks, sizeof *overlays);
  char now[32];
  int rc = -1;
  if (!overlays || asprintf (&dir, "%s/convert", c->workdir) < 0 ||
      asprintf (&xml_path, "%s/v2v-input.xml", dir) < 0 ||
      asprintf (&mr_path, "%s/v2v-progress.jsonl", dir) < 0 ||
      asprintf (&log, "%s/qemu-img.log", dir) < 0) {
    free (overlays);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < m->n_disks; i++)
    if (asprintf (&overlays[i], "%s/disk%zu.overlay.qcow2", dir, i) < 0)
      overlays[i] = NULL;
  if (v2k_mkdir_p (dir, 0700, err) == -1)
    goto out;
  v2k_now_rfc3339 (now);
  cv->state = STEP_RUNNING;
  v2k_set_str (&cv->accel, v2k_convert_accel_names[c->accel]);
  v2k_set_str (&cv->started, now);
  v2k_set_str (&cv->finished, NULL);
  if (save (c, err) == -1)
    goto out;

  if (!cv->committing) {
    /* From a clean state: whatever an interrupted attempt left is discarded. */
    for (size_t i = 0; i < m->n_disks; i++) {
      unlink (overlays[i]);
      const char *fmt;
      CLEANUP_FREE char *backing = backing_name (m, &m->disks[i], &fmt);
      const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b",
                             backing ? backing : "", overlays[i], NULL };
      if (!backing || run_tool (argv, log, "qemu-img create (conversion overlay)", err) == -1)
        goto fail;
    }
    CLEANUP_FREE char *xml = v2k_convert_input_xml (m, overlays);
    if (!xml || v2k_write_file_atomic (xml_path, xml, strlen (xml), 0600, err) == -1)
      goto fail;
    struct progress p = { .c = c, .path = mr_path };
    if (run_virt_v2v (c, dir, xml_path, &p, err) == -1)
      goto fail;
    cv->virtio = p.virtio;
    cv->warnings = p.warnings;
    /* From here the overlays hold the converted guest: commit them, and
     * finish the commit after any crash rather than throw them away. */
    cv->committing = true;
    if (save (c, err) == -1)
      goto out;
    v2k_crashpoint ("convert:committing");
  }
  for (size_t i = 0; i < m->n_disks; i++) {
    if (access (overlays[i], F_OK) != 0) {
      v2k_error_set (err, V2K_EXIT_TARGET, "the conversion overlay %s is gone while its commit "
                     "was unfinished: restore the targets from the source (sync base --full) "
                     "and convert again", overlays[i]);
      goto out;
    }
    const char *argv[] = { "qemu-img", "commit", "-q", "-d", overlays[i], NULL };
    if (run_tool (argv, log, "qemu-img commit (conversion overlay)", err) == -1 ||
        fsync_target (m, &m->disks[i], err) == -1)
      goto out;
    v2k_crashpoint ("convert:committed-disk");
  }
  v2k_now_rfc3339 (now);
  cv->committing = false;
  cv->converted = true;
  cv->state = STEP_DONE;
  v2k_set_str (&cv->fallback, NULL);
  v2k_set_str (&cv->finished, now);
  if (save (c, err) == -1)
    goto out;
  event (c, EV_INFO, "convert.done",
         json_pack ("{s:b, s:I, s:s}", "virtio", cv->virtio, "warnings", (json_int_t) cv->warnings,
                    "accel", cv->accel));
  unlink (xml_path);
  rc = 0;
  goto out;

 fail:
  /* The targets were never written: the overlays go, and a re-run starts clean. */
  for (size_t i = 0; i < m->n_disks; i++)
    if (overlays[i])
      unlink (overlays[i]);
  cv->state = STEP_FAILED;
  {
    struct v2k_error ignored = { 0 };
    save (c, &ignored);
  }
 out:
  if (rc == 0 || !cv->committing)
    overlays_free (overlays, m->n_disks);
  else {
    for (size_t i = 0; i < m->n_disks; i++)
      free (overlays[i]);
    free (overlays);
  }
  return rc;
}
