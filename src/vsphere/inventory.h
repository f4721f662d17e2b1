/* The VM's inventory: finding it (by moref, inventory path or name) and
 * reading its identity, hardware, disks and NICs into the manifest. */
#ifndef V2K_VSPHERE_INVENTORY_H
#define V2K_VSPHERE_INVENTORY_H

#include <stddef.h>
#include "soap.h"
#include "../state/manifest.h"

struct v2k_inventory_report {
  char **refusals;        /* one line per disk that cannot be migrated */
  size_t nrefusals;
  char **user_snapshots;  /* names of snapshots that already exist */
  size_t nuser_snapshots;
};

/* Resolves SPEC (vm-123, DC/vm/folder/name, or a name) to a moref and its
 * inventory path. A name shared by several VMs is refused with the list. */
int v2k_vm_find (struct v2k_soap *s, const char *spec, char **moref, char **path,
                 struct v2k_error *err);

/* Reads the VM, its host and the vCenter's identity into M's source, disks
 * and nics (disks root first). Problems that forbid migration are listed in
 * REPORT, not returned as errors, so that all of them can be shown. */
int v2k_inventory_read (struct v2k_soap *s, const char *moref, struct v2k_manifest *m,
                        struct v2k_inventory_report *report, struct v2k_error *err);

/* The device part of that, from a config.hardware.device value and the
 * bootOptions element (may be NULL); used by unit tests on recorded replies. */
int v2k_inventory_parse_devices (xmlNode *devices, xmlNode *boot_options,
                                 struct v2k_manifest *m, struct v2k_inventory_report *report,
                                 struct v2k_error *err);

void v2k_inventory_report_free (struct v2k_inventory_report *r);

/* Splits "[datastore] dir/file.vmdk" into its two parts (freshly allocated). */
int v2k_datastore_path_parse (const char *s, char **datastore, char **path);

#endif
