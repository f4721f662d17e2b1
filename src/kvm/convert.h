/* Guest conversion with virt-v2v-in-place (libguestfs): virtio drivers in
 * the boot path, fstab and the bootloader rewritten, VMware Tools removed.
 * The replica is never written by virt-v2v: each target gets a qcow2
 * overlay, virt-v2v converts the overlays, and only after it succeeds are
 * they committed into the targets (qemu-img commit) and flushed. A failed or
 * killed conversion leaves the targets exactly as the final sync made them. */
#ifndef V2K_KVM_CONVERT_H
#define V2K_KVM_CONVERT_H

#include <signal.h>
#include <stdbool.h>
#include "../state/events.h"
#include "../state/manifest.h"

enum v2k_convert_mode { CONVERT_AUTO, CONVERT_REQUIRED, CONVERT_OFF };
extern const char *const v2k_convert_mode_names[];   /* auto, required, off */
enum v2k_convert_accel { ACCEL_PROBE = -1, ACCEL_KVM, ACCEL_TCG };
extern const char *const v2k_convert_accel_names[];  /* kvm, tcg */

/* Why this guest cannot be converted on this host (missing tools, a
 * missing kernel for the appliance, Windows without virtio-win or
 * rhsrvany/pvvxsvc), as one line naming what to install or supply; NULL
 * when it can. Checked before the source is shut down. */
char *v2k_convert_blocker (const struct v2k_manifest *m);

/* KVM when /dev/kvm really works (a QEMU with accel=kvm starts and quits),
 * else TCG. */
int v2k_convert_probe_accel (void);

/* The domain XML virt-v2v reads (-i libvirtxml): the overlays with the
 * source's buses in source order, and the NICs with their MACs. */
char *v2k_convert_input_xml (const struct v2k_manifest *m, char *const *overlays);

struct v2k_convert_ctx {
  struct v2k_manifest *m;
  const char *workdir;
  struct v2k_events *ev;
  int accel;                       /* ACCEL_KVM or ACCEL_TCG */
  volatile sig_atomic_t *stop;
  /* Saves the manifest (the caller's atomic save). */
  int (*save) (void *opaque, struct v2k_error *err);
  void *opaque;
};

/* Converts the targets, or finishes an interrupted commit. On success the
 * manifest's conversion record says converted. On failure the overlays are
 * gone (unless a commit had started) and the targets are untouched. */
int v2k_convert_run (struct v2k_convert_ctx *c, struct v2k_error *err);

#endif
