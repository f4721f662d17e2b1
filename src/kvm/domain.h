/* The libvirt domain XML for a migrated VM, generated from the manifest:
 * q35, the source's CPU topology, firmware chosen by libvirt (EFI with
 * secure boot and SMM when the source had it), vTPM as tpm-crb 2.0, disks
 * root first with drivers matching their targets, every NIC with its MAC,
 * a guest-agent channel, a serial console and VNC. Unconverted guests get
 * SATA disks and e1000e NICs, which boot everywhere without virtio drivers. */
#ifndef V2K_DOMAIN_H
#define V2K_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include "../state/manifest.h"

enum v2k_disk_bus { DISK_BUS_SATA, DISK_BUS_VIRTIO, DISK_BUS_VIRTIO_SCSI };
enum v2k_nic_model { NIC_E1000E, NIC_VIRTIO };
extern const char *const v2k_disk_bus_names[];   /* "sata", "virtio", "virtio-scsi" */
extern const char *const v2k_nic_model_names[];  /* "e1000e", "virtio" */

struct v2k_domain_opts {
  const char *name;               /* default: the source VM's name */
  int disk_bus;                   /* enum v2k_disk_bus */
  int nic_model;                  /* enum v2k_nic_model */
  const char *const *net_map;     /* "VMware network=bridge:BR" or "=network:NET" */
  size_t n_net_map;
  const char *net_default;        /* "bridge:BR" or "network:NET", or NULL */
  const char *rbd_secret;         /* libvirt secret UUID for cephx, or NULL */
  const char *rbd_user;           /* cephx user (default admin) */
  const char *const *rbd_monitors;  /* "host:port" */
  size_t n_rbd_monitors;
};

/* Windows, from the guest id (win…) or the full name. */
bool v2k_guest_is_windows (const struct v2k_manifest *m);

/* The XML, or NULL with ERR naming what is missing: an unmapped network
 * (listing all that need a mapping), a bad map entry, RBD disks without
 * monitors. */
char *v2k_domain_xml (const struct v2k_manifest *m, const struct v2k_domain_opts *o,
                      struct v2k_error *err);

#endif
