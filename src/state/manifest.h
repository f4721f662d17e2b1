/* The workdir manifest: typed structs, the one JSON mapping for them, strict
 * loading and atomic saving. docs/manifest.md documents every field. */
#ifndef V2K_MANIFEST_H
#define V2K_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "jsonmap.h"
#include "../util/error.h"

#define V2K_MANIFEST_SCHEMA "ablestack-v2k/manifest/v1"
#define V2K_MANIFEST_FILE "manifest.json"

enum v2k_step_state { STEP_PENDING, STEP_RUNNING, STEP_DONE, STEP_FAILED };
extern const char *const v2k_step_state_names[];

/* The pipeline's steps, in order; "phase" in the manifest is the latest one
 * started. */
enum v2k_phase {
  PHASE_INIT, PHASE_CBT, PHASE_SNAPSHOT_BASE, PHASE_SYNC_BASE, PHASE_SNAPSHOT_INCR,
  PHASE_SYNC_INCR, PHASE_SNAPSHOT_FINAL, PHASE_SYNC_FINAL, PHASE_CUTOVER, PHASE_DONE,
};
extern const char *const v2k_phase_names[];

enum v2k_firmware { FIRMWARE_BIOS, FIRMWARE_EFI };
enum v2k_target_format { FORMAT_QCOW2, FORMAT_RAW };
enum v2k_target_storage { STORAGE_FILE, STORAGE_BLOCK, STORAGE_RBD };
enum v2k_transport_kind { TRANSPORT_VDDK, TRANSPORT_FILE, TRANSPORT_NBD };
enum v2k_controller_kind { CTRL_SCSI, CTRL_SATA, CTRL_IDE, CTRL_NVME };
enum v2k_snapshot_kind { SNAP_BASE, SNAP_INCR, SNAP_FINAL };
extern const char *const v2k_firmware_names[];
extern const char *const v2k_format_names[];
extern const char *const v2k_storage_names[];
extern const char *const v2k_transport_names[];
extern const char *const v2k_controller_names[];
extern const char *const v2k_snapshot_kind_names[];

struct v2k_error_record {
  char *code;          /* the exit code's name, e.g. "transfer" */
  char *message;
  char *phase;
  char *time;
};

struct v2k_step {
  int state;           /* enum v2k_step_state */
  char *started;
  char *finished;
};

struct v2k_phases {
  struct v2k_step init, cbt, snapshot_base, sync_base, snapshot_incr, sync_incr,
    snapshot_final, sync_final, cutover, verify, cleanup;
};

struct v2k_run {
  char *id;
  char *created;
  char *tool_version;
};

struct v2k_vcenter {
  char *url;
  char *product;
  char *version;
  char *api_version;
  char *instance_uuid;
};

struct v2k_vm {
  char *name;
  char *moref;
  char *inventory_path;
  char *bios_uuid;
  char *instance_uuid;
  char *guest_id;
  char *guest_full_name;
  int64_t num_cpus;
  int64_t cores_per_socket;
  int64_t memory_mb;
  int firmware;        /* enum v2k_firmware */
  bool secure_boot;
  bool vtpm;
  char *power_state;
  char *tools_status;
};

struct v2k_host {
  char *moref;
  char *name;
  char *ssl_thumbprint;
};

struct v2k_source {
  struct v2k_vcenter vcenter;
  struct v2k_vm vm;
  struct v2k_host host;
};

struct v2k_libvirt_plan {
  char *uri;
  char *domain_name;
  char *domain_uuid;
  char *xml_path;
};

struct v2k_target {
  int format;          /* enum v2k_target_format */
  int storage;         /* enum v2k_target_storage */
  char *dst_dir;
  char *ceph_conf;     /* rbd storage: the ceph.conf to use */
  char *ceph_id;       /* rbd storage: the client id (without "client.") */
  struct v2k_libvirt_plan libvirt;
};

struct v2k_transport {
  int kind;            /* enum v2k_transport_kind */
  char *vddk_libdir;
  char *vddk_thumbprint;
  char *vddk_transports;
  char *source_nbd;
  struct jm_kv *datastore_map;
  size_t n_datastore_map;
};

struct v2k_controller {
  int kind;            /* enum v2k_controller_kind */
  char *model;         /* pvscsi, lsilogic, lsisas, buslogic, ahci, ide, nvme */
  int64_t key;
  int64_t bus;
  int64_t unit;
};

struct v2k_cbt {
  bool enabled;
  char *change_id;     /* the last changeId whose data is committed in the target */
};

struct v2k_sync {
  int state;           /* enum v2k_step_state */
  char *snapshot;      /* moref of the snapshot read */
  char *change_id;     /* the changeId this sync brings the target to */
  int64_t bytes_total;
  int64_t bytes_done;
  int64_t checkpoint;  /* every extent below this offset is written and flushed */
  int64_t rate_bps;
  char *started;
  char *finished;
};

struct v2k_counters {
  int64_t bytes_copied;
  int64_t bytes_zeroed;
  int64_t areas;
  int64_t syncs;
};

struct v2k_verify_record {
  int state;           /* enum v2k_step_state: done = identical, failed = differs */
  char *snapshot;      /* moref compared with */
  char *mode;          /* "full" or "sample:N" */
  int64_t bytes_checked;
  int64_t mismatches;  /* chunks that differ */
  char *time;
};

/* What a target is, recorded when this run creates or adopts it, so that a
 * target deleted, replaced, truncated or resized behind our back is refused
 * instead of written (an empty target topped up with a delta is data loss). */
struct v2k_target_identity {
  int64_t device;      /* file: st_dev of its filesystem; block: st_rdev */
  int64_t inode;       /* file: st_ino; 0 otherwise */
  int64_t size;        /* file: the format's virtual size; block and rbd: bytes */
  char *serial;        /* block: WWN, serial, dm uuid or loop backing file, or null */
  char *image_id;      /* rbd: the image id, which a re-created image changes */
  char *recorded;      /* when */
};

struct v2k_disk {
  char *id;            /* "scsi0:0", the key of --target-map */
  int64_t key;
  char *label;
  struct v2k_controller controller;
  int64_t capacity;
  char *file_name;     /* "[ds] dir/file.vmdk" */
  char *datastore;
  bool thin;
  char *disk_mode;
  char *sharing;
  char *target_path;
  bool target_created;  /* this run created the target, so it may recreate it */
  struct v2k_target_identity *target_identity;  /* null until created or adopted */
  struct v2k_cbt cbt;
  struct v2k_sync base, incr, final;
  struct v2k_counters counters;
  struct v2k_verify_record verify;
  struct v2k_error_record *last_error;
};

struct v2k_nic {
  int64_t key;
  char *label;
  char *mac;
  char *adapter;
  char *network;
  bool connected;
};

struct v2k_snapshot_disk {
  int64_t key;
  char *change_id;
  char *file_name;
};

struct v2k_snapshot {
  char *moref;
  char *name;
  int kind;            /* enum v2k_snapshot_kind */
  int64_t seq;
  char *created;
  bool removed;
  struct v2k_snapshot_disk *disks;
  size_t n_disks;
};

/* What cutover has done, so that a re-run continues from the next step. */
struct v2k_cutover_record {
  char *shutdown;      /* the policy used: guest, poweroff, manual */
  char *powered_off;   /* when the source was first seen powered off */
  int64_t shutdown_ms; /* from the shutdown request to poweredOff */
  int64_t final_sync_ms;
  bool defined;        /* the domain is defined (target.libvirt has its uuid) */
  bool started;
  bool snapshots_removed;
};

/* Guest conversion (virt-v2v-in-place through qcow2 overlays). */
struct v2k_conversion {
  int state;           /* enum v2k_step_state */
  char *mode;          /* auto, required, off: as asked */
  char *accel;         /* kvm or tcg */
  bool converted;      /* virt-v2v succeeded and every overlay is committed */
  bool virtio;         /* virt-v2v reported virtio drivers installed */
  bool committing;     /* the overlays are being committed: finish, never discard */
  int64_t warnings;
  char *fallback;      /* why the guest keeps SATA + e1000e, or null */
  char *started;
  char *finished;
};

/* One disk registered in the cloud. */
struct v2k_cloud_volume {
  char *disk;          /* the disk id (scsi0:0) */
  char *path;          /* what importVolume was given (basename or RBD image) */
  char *import_job;
  char *volume_id;
  char *attach_job;
  int64_t device_id;
  bool attached;
};

/* Upstream flavour: a NIC added after the import. */
struct v2k_cloud_nic {
  char *mac;
  char *network_id;
  char *job;
  bool added;
};

/* ABLESTACK cloud registration: every id is saved before the next step. */
struct v2k_cloud_record {
  char *endpoint;
  char *flavour;       /* mold or upstream */
  char *algorithm;     /* the signature algorithm that worked */
  char *step;          /* the last step finished: preflight, imported, deployed, nics, root,
                        * attached, verified, started, rolled_back */
  char *vm_name;
  char *vm_id;         /* chosen by the tool (customid) before the deploy */
  char *deploy_job;
  char *root_job;
  char *start_job;
  char *disk_offering_id;
  struct v2k_cloud_volume *volumes;
  size_t n_volumes;
  struct v2k_cloud_nic *nics;   /* upstream: NICs after the first */
  size_t n_nics;
  bool started;
  bool rolled_back;
};

/* run's downtime forecast after each incremental round. */
struct v2k_forecast {
  int64_t round;                /* incremental rounds run has measured */
  int64_t last_round_bytes;     /* bytes the last round copied */
  int64_t rate_bps;             /* the copy rate measured over the last rounds */
  int64_t snapshot_ms;          /* snapshot create + remove overhead, measured */
  int64_t predicted_final_ms;   /* the predicted final sync, snapshot included */
  int64_t downtime_target_ms;
  bool ready;                   /* the prediction met the target */
  char *decided;                /* when the prediction last changed */
};

struct v2k_manifest {
  char *schema;
  struct v2k_run run;
  struct v2k_source source;
  struct v2k_target target;
  struct v2k_transport transport;
  struct v2k_disk *disks;
  size_t n_disks;
  struct v2k_nic *nics;
  size_t n_nics;
  struct v2k_snapshot *snapshots;
  size_t n_snapshots;
  int phase;           /* enum v2k_phase */
  struct v2k_phases phases;
  int64_t incr_rounds;
  struct v2k_cutover_record cutover;
  struct v2k_conversion conversion;
  struct v2k_cloud_record cloud;
  struct v2k_forecast forecast;
  struct v2k_error_record *last_error;
};

/* Parses and validates manifest text; errors name SOURCE and the field. */
struct v2k_manifest *v2k_manifest_parse (const char *text, size_t len,
                                         const char *source, struct v2k_error *err);
/* Loads <workdir>/manifest.json. */
struct v2k_manifest *v2k_manifest_load (const char *workdir, struct v2k_error *err);
/* The manifest as JSON text (indented, sorted as in the schema). */
char *v2k_manifest_serialize (const struct v2k_manifest *m);
/* Replaces <workdir>/manifest.json atomically with mode 0600. */
int v2k_manifest_save (const struct v2k_manifest *m, const char *workdir,
                       struct v2k_error *err);
void v2k_manifest_free (struct v2k_manifest *m);
json_t *v2k_error_record_json (const struct v2k_error_record *r);
void v2k_error_record_free (struct v2k_error_record *r);

/* A disk's sync record for a snapshot KIND (enum v2k_snapshot_kind). */
struct v2k_sync *v2k_disk_sync (struct v2k_disk *d, int kind);
/* This run's latest snapshot of KIND still on vCenter (KIND < 0: of any
 * kind), or NULL. */
const struct v2k_snapshot *v2k_manifest_latest_snapshot (const struct v2k_manifest *m, int kind);
/* Replaces *DST with a copy of SRC (NULL allowed). */
void v2k_set_str (char **dst, const char *src);

/* The step record for PHASE (NULL for PHASE_DONE). */
struct v2k_step *v2k_manifest_step (struct v2k_manifest *m, int phase);

#endif
