#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"

const char *const v2k_step_state_names[] = { "pending", "running", "done", "failed", NULL };
const char *const v2k_phase_names[] = {
  "init", "cbt", "snapshot_base", "sync_base", "snapshot_incr", "sync_incr",
  "snapshot_final", "sync_final", "cutover", "done", NULL,
};
const char *const v2k_firmware_names[] = { "bios", "efi", NULL };
const char *const v2k_format_names[] = { "qcow2", "raw", NULL };
const char *const v2k_storage_names[] = { "file", "block", "rbd", NULL };
const char *const v2k_transport_names[] = { "vddk", "file", "nbd", NULL };
const char *const v2k_controller_names[] = { "scsi", "sata", "ide", "nvme", NULL };
const char *const v2k_snapshot_kind_names[] = { "base", "incr", "final", NULL };

/* The schema tables: the single description of the manifest's JSON form. */

#define S(t, m) JM_FIELD (t, m, JM_STR, true)
#define OS(t, m) JM_FIELD (t, m, JM_OPTSTR, false)
#define I(t, m) JM_FIELD (t, m, JM_INT, true)
#define B(t, m) JM_FIELD (t, m, JM_BOOL, true)

static const struct jm_field error_record_fields[] = {
  S (struct v2k_error_record, code), S (struct v2k_error_record, message),
  OS (struct v2k_error_record, phase), S (struct v2k_error_record, time),
};
static const struct jm_schema error_record_schema = JM_SCHEMA (struct v2k_error_record, error_record_fields);

static const struct jm_field step_fields[] = {
  JM_ENUMFIELD (struct v2k_step, state, true, v2k_step_state_names),
  OS (struct v2k_step, started), OS (struct v2k_step, finished),
};
static const struct jm_schema step_schema = JM_SCHEMA (struct v2k_step, step_fields);

#define STEP(m) JM_SUBFIELD (struct v2k_phases, m, JM_OBJ, true, step_schema)
static const struct jm_field phases_fields[] = {
  STEP (init), STEP (cbt), STEP (snapshot_base), STEP (sync_base), STEP (snapshot_incr),
  STEP (sync_incr), STEP (snapshot_final), STEP (sync_final), STEP (cutover), STEP (verify),
  STEP (cleanup),
};
static const struct jm_schema phases_schema = JM_SCHEMA (struct v2k_phases, phases_fields);

static const struct jm_field run_fields[] = {
  S (struct v2k_run, id), S (struct v2k_run, created), S (struct v2k_run, tool_version),
};
static const struct jm_schema run_schema = JM_SCHEMA (struct v2k_run, run_fields);

static const struct jm_field vcenter_fields[] = {
  S (struct v2k_vcenter, url), OS (struct v2k_vcenter, product), OS (struct v2k_vcenter, version),
  OS (struct v2k_vcenter, api_version), OS (struct v2k_vcenter, instance_uuid),
};
static const struct jm_schema vcenter_schema = JM_SCHEMA (struct v2k_vcenter, vcenter_fields);

static const struct jm_field vm_fields[] = {
  S (struct v2k_vm, name), S (struct v2k_vm, moref), OS (struct v2k_vm, inventory_path),
  OS (struct v2k_vm, bios_uuid), S (struct v2k_vm, instance_uuid), OS (struct v2k_vm, guest_id),
  OS (struct v2k_vm, guest_full_name), I (struct v2k_vm, num_cpus), I (struct v2k_vm, cores_per_socket),
  I (struct v2k_vm, memory_mb), JM_ENUMFIELD (struct v2k_vm, firmware, true, v2k_firmware_names),
  B (struct v2k_vm, secure_boot), B (struct v2k_vm, vtpm), OS (struct v2k_vm, power_state),
  OS (struct v2k_vm, tools_status),
};
static const struct jm_schema vm_schema = JM_SCHEMA (struct v2k_vm, vm_fields);

static const struct jm_field host_fields[] = {
  OS (struct v2k_host, moref), OS (struct v2k_host, name), OS (struct v2k_host, ssl_thumbprint),
};
static const struct jm_schema host_schema = JM_SCHEMA (struct v2k_host, host_fields);

static const struct jm_field source_fields[] = {
  JM_SUBFIELD (struct v2k_source, vcenter, JM_OBJ, true, vcenter_schema),
  JM_SUBFIELD (struct v2k_source, vm, JM_OBJ, true, vm_schema),
  JM_SUBFIELD (struct v2k_source, host, JM_OBJ, true, host_schema),
};
static const struct jm_schema source_schema = JM_SCHEMA (struct v2k_source, source_fields);

static const struct jm_field libvirt_fields[] = {
  OS (struct v2k_libvirt_plan, uri), OS (struct v2k_libvirt_plan, domain_name),
  OS (struct v2k_libvirt_plan, domain_uuid), OS (struct v2k_libvirt_plan, xml_path),
};
static const struct jm_schema libvirt_schema = JM_SCHEMA (struct v2k_libvirt_plan, libvirt_fields);

static const struct jm_field target_fields[] = {
  JM_ENUMFIELD (struct v2k_target, format, true, v2k_format_names),
  JM_ENUMFIELD (struct v2k_target, storage, true, v2k_storage_names),
  OS (struct v2k_target, dst_dir), OS (struct v2k_target, ceph_conf), OS (struct v2k_target, ceph_id),
  JM_SUBFIELD (struct v2k_target, libvirt, JM_OBJ, true, libvirt_schema),
};
static const struct jm_schema target_schema = JM_SCHEMA (struct v2k_target, target_fields);

static const struct jm_field transport_fields[] = {
  JM_ENUMFIELD (struct v2k_transport, kind, true, v2k_transport_names),
  OS (struct v2k_transport, vddk_libdir), OS (struct v2k_transport, vddk_thumbprint),
  OS (struct v2k_transport, vddk_transports), OS (struct v2k_transport, source_nbd),
  JM_MAPFIELD (struct v2k_transport, datastore_map, n_datastore_map, true),
};
static const struct jm_schema transport_schema = JM_SCHEMA (struct v2k_transport, transport_fields);

static const struct jm_field controller_fields[] = {
  JM_ENUMFIELD (struct v2k_controller, kind, true, v2k_controller_names),
  OS (struct v2k_controller, model), I (struct v2k_controller, key),
  I (struct v2k_controller, bus), I (struct v2k_controller, unit),
};
static const struct jm_schema controller_schema = JM_SCHEMA (struct v2k_controller, controller_fields);

static const struct jm_field cbt_fields[] = {
  B (struct v2k_cbt, enabled), OS (struct v2k_cbt, change_id),
};
static const struct jm_schema cbt_schema = JM_SCHEMA (struct v2k_cbt, cbt_fields);

static const struct jm_field sync_fields[] = {
  JM_ENUMFIELD (struct v2k_sync, state, true, v2k_step_state_names),
  OS (struct v2k_sync, snapshot), OS (struct v2k_sync, change_id),
  I (struct v2k_sync, bytes_total), I (struct v2k_sync, bytes_done), I (struct v2k_sync, checkpoint),
  I (struct v2k_sync, rate_bps), OS (struct v2k_sync, started), OS (struct v2k_sync, finished),
};
static const struct jm_schema sync_schema = JM_SCHEMA (struct v2k_sync, sync_fields);

static const struct jm_field counters_fields[] = {
  I (struct v2k_counters, bytes_copied), I (struct v2k_counters, bytes_zeroed),
  I (struct v2k_counters, areas), I (struct v2k_counters, syncs),
};
static const struct jm_schema counters_schema = JM_SCHEMA (struct v2k_counters, counters_fields);

static const struct jm_field verify_fields[] = {
  JM_ENUMFIELD (struct v2k_verify_record, state, true, v2k_step_state_names),
  OS (struct v2k_verify_record, snapshot), OS (struct v2k_verify_record, mode),
  I (struct v2k_verify_record, bytes_checked), I (struct v2k_verify_record, mismatches),
  OS (struct v2k_verify_record, time),
};
static const struct jm_schema verify_schema = JM_SCHEMA (struct v2k_verify_record, verify_fields);

static const struct jm_field target_identity_fields[] = {
  I (struct v2k_target_identity, device), I (struct v2k_target_identity, inode),
  I (struct v2k_target_identity, size), OS (struct v2k_target_identity, serial),
  OS (struct v2k_target_identity, image_id), S (struct v2k_target_identity, recorded),
};
static const struct jm_schema target_identity_schema =
  JM_SCHEMA (struct v2k_target_identity, target_identity_fields);

static const struct jm_field disk_fields[] = {
  S (struct v2k_disk, id), I (struct v2k_disk, key), OS (struct v2k_disk, label),
  JM_SUBFIELD (struct v2k_disk, controller, JM_OBJ, true, controller_schema),
  I (struct v2k_disk, capacity), S (struct v2k_disk, file_name), OS (struct v2k_disk, datastore),
  B (struct v2k_disk, thin), OS (struct v2k_disk, disk_mode), OS (struct v2k_disk, sharing),
  S (struct v2k_disk, target_path), B (struct v2k_disk, target_created),
  JM_SUBFIELD (struct v2k_disk, target_identity, JM_OPTOBJ, false, target_identity_schema),
  JM_SUBFIELD (struct v2k_disk, cbt, JM_OBJ, true, cbt_schema),
  JM_SUBFIELD (struct v2k_disk, base, JM_OBJ, true, sync_schema),
  JM_SUBFIELD (struct v2k_disk, incr, JM_OBJ, true, sync_schema),
  JM_SUBFIELD (struct v2k_disk, final, JM_OBJ, true, sync_schema),
  JM_SUBFIELD (struct v2k_disk, counters, JM_OBJ, true, counters_schema),
  JM_SUBFIELD (struct v2k_disk, verify, JM_OBJ, true, verify_schema),
  JM_SUBFIELD (struct v2k_disk, last_error, JM_OPTOBJ, false, error_record_schema),
};
static const struct jm_schema disk_schema = JM_SCHEMA (struct v2k_disk, disk_fields);

static const struct jm_field nic_fields[] = {
  I (struct v2k_nic, key), OS (struct v2k_nic, label), S (struct v2k_nic, mac),
  OS (struct v2k_nic, adapter), OS (struct v2k_nic, network), B (struct v2k_nic, connected),
};
static const struct jm_schema nic_schema = JM_SCHEMA (struct v2k_nic, nic_fields);

static const struct jm_field snapshot_disk_fields[] = {
  I (struct v2k_snapshot_disk, key), OS (struct v2k_snapshot_disk, change_id),
  S (struct v2k_snapshot_disk, file_name),
};
static const struct jm_schema snapshot_disk_schema = JM_SCHEMA (struct v2k_snapshot_disk, snapshot_disk_fields);

static const struct jm_field snapshot_fields[] = {
  S (struct v2k_snapshot, moref), S (struct v2k_snapshot, name),
  JM_ENUMFIELD (struct v2k_snapshot, kind, true, v2k_snapshot_kind_names),
  I (struct v2k_snapshot, seq), S (struct v2k_snapshot, created), B (struct v2k_snapshot, removed),
  JM_ARRFIELD (struct v2k_snapshot, disks, n_disks, true, snapshot_disk_schema),
};
static const struct jm_schema snapshot_schema = JM_SCHEMA (struct v2k_snapshot, snapshot_fields);

static const struct jm_field cutover_fields[] = {
  OS (struct v2k_cutover_record, shutdown), OS (struct v2k_cutover_record, powered_off),
  I (struct v2k_cutover_record, shutdown_ms), I (struct v2k_cutover_record, final_sync_ms),
  B (struct v2k_cutover_record, defined), B (struct v2k_cutover_record, started),
  B (struct v2k_cutover_record, snapshots_removed),
};
static const struct jm_schema cutover_schema = JM_SCHEMA (struct v2k_cutover_record, cutover_fields);

static const struct jm_field conversion_fields[] = {
  JM_ENUMFIELD (struct v2k_conversion, state, true, v2k_step_state_names),
  OS (struct v2k_conversion, mode), OS (struct v2k_conversion, accel),
  B (struct v2k_conversion, converted), B (struct v2k_conversion, virtio),
  B (struct v2k_conversion, committing), I (struct v2k_conversion, warnings),
  OS (struct v2k_conversion, fallback), OS (struct v2k_conversion, started),
  OS (struct v2k_conversion, finished),
};
static const struct jm_schema conversion_schema = JM_SCHEMA (struct v2k_conversion, conversion_fields);

static const struct jm_field cloud_volume_fields[] = {
  S (struct v2k_cloud_volume, disk), OS (struct v2k_cloud_volume, path),
  OS (struct v2k_cloud_volume, import_job), OS (struct v2k_cloud_volume, volume_id),
  OS (struct v2k_cloud_volume, attach_job), I (struct v2k_cloud_volume, device_id),
  B (struct v2k_cloud_volume, attached),
};
static const struct jm_schema cloud_volume_schema = JM_SCHEMA (struct v2k_cloud_volume, cloud_volume_fields);

static const struct jm_field cloud_nic_fields[] = {
  OS (struct v2k_cloud_nic, mac), OS (struct v2k_cloud_nic, network_id), OS (struct v2k_cloud_nic, job),
  B (struct v2k_cloud_nic, added),
};
static const struct jm_schema cloud_nic_schema = JM_SCHEMA (struct v2k_cloud_nic, cloud_nic_fields);

static const struct jm_field cloud_fields[] = {
  OS (struct v2k_cloud_record, endpoint), OS (struct v2k_cloud_record, flavour),
  OS (struct v2k_cloud_record, algorithm), OS (struct v2k_cloud_record, step),
  OS (struct v2k_cloud_record, vm_name), OS (struct v2k_cloud_record, vm_id),
  OS (struct v2k_cloud_record, deploy_job), OS (struct v2k_cloud_record, root_job),
  OS (struct v2k_cloud_record, start_job), OS (struct v2k_cloud_record, disk_offering_id),
  JM_ARRFIELD (struct v2k_cloud_record, volumes, n_volumes, true, cloud_volume_schema),
  JM_ARRFIELD (struct v2k_cloud_record, nics, n_nics, true, cloud_nic_schema),
  B (struct v2k_cloud_record, started), B (struct v2k_cloud_record, rolled_back),
};
static const struct jm_schema cloud_schema = JM_SCHEMA (struct v2k_cloud_record, cloud_fields);

static const struct jm_field forecast_fields[] = {
  I (struct v2k_forecast, round), I (struct v2k_forecast, last_round_bytes),
  I (struct v2k_forecast, rate_bps), I (struct v2k_forecast, snapshot_ms),
  I (struct v2k_forecast, predicted_final_ms), I (struct v2k_forecast, downtime_target_ms),
  B (struct v2k_forecast, ready), OS (struct v2k_forecast, decided),
};
static const struct jm_schema forecast_schema = JM_SCHEMA (struct v2k_forecast, forecast_fields);

static const struct jm_field manifest_fields[] = {
  S (struct v2k_manifest, schema),
  JM_SUBFIELD (struct v2k_manifest, run, JM_OBJ, true, run_schema),
  JM_SUBFIELD (struct v2k_manifest, source, JM_OBJ, true, source_schema),
  JM_SUBFIELD (struct v2k_manifest, target, JM_OBJ, true, target_schema),
  JM_SUBFIELD (struct v2k_manifest, transport, JM_OBJ, true, transport_schema),
  JM_ARRFIELD (struct v2k_manifest, disks, n_disks, true, disk_schema),
  JM_ARRFIELD (struct v2k_manifest, nics, n_nics, true, nic_schema),
  JM_ARRFIELD (struct v2k_manifest, snapshots, n_snapshots, true, snapshot_schema),
  JM_ENUMFIELD (struct v2k_manifest, phase, true, v2k_phase_names),
  JM_SUBFIELD (struct v2k_manifest, phases, JM_OBJ, true, phases_schema),
  I (struct v2k_manifest, incr_rounds),
  JM_SUBFIELD (struct v2k_manifest, cutover, JM_OBJ, false, cutover_schema),
  JM_SUBFIELD (struct v2k_manifest, conversion, JM_OBJ, false, conversion_schema),
  JM_SUBFIELD (struct v2k_manifest, cloud, JM_OBJ, false, cloud_schema),
  JM_SUBFIELD (struct v2k_manifest, forecast, JM_OBJ, false, forecast_schema),
  JM_SUBFIELD (struct v2k_manifest, last_error, JM_OPTOBJ, false, error_record_schema),
};
static const struct jm_schema manifest_schema = JM_SCHEMA (struct v2k_manifest, manifest_fields);

/* Checks that the types alone cannot express. */
static int
check_consistency (const struct v2k_manifest *m, struct v2k_error *err)
{
  for (size_t i = 0; i < m->n_disks; i++) {
    const struct v2k_disk *d = &m->disks[i];
    if (d->capacity == 0) {
      v2k_error_set (err, V2K_EXIT_WORKDIR, "disks[%zu].capacity: must be positive", i);
      return -1;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp (m->disks[j].id, d->id) == 0 || m->disks[j].key == d->key) {
        v2k_error_set (err, V2K_EXIT_WORKDIR,
                       "disks[%zu]: same id or key as disks[%zu] (%s, %lld)", i, j,
                       d->id, (long long) d->key);
        return -1;
      }
      if (strcmp (m->disks[j].target_path, d->target_path) == 0) {
        v2k_error_set (err, V2K_EXIT_WORKDIR,
                       "disks[%zu].target_path: same as disks[%zu] (%s)", i, j, d->target_path);
        return -1;
      }
    }
    const struct v2k_sync *syncs[] = { &d->base, &d->incr, &d->final };
    const char *names[] = { "base", "incr", "final" };
    for (size_t k = 0; k < 3; k++) {
      if (syncs[k]->bytes_done > syncs[k]->bytes_total && syncs[k]->bytes_total > 0) {
        v2k_error_set (err, V2K_EXIT_WORKDIR,
                       "disks[%zu].%s.bytes_done: %lld exceeds bytes_total %lld", i, names[k],
                       (long long) syncs[k]->bytes_done, (long long) syncs[k]->bytes_total);
        return -1;
      }
      if (syncs[k]->checkpoint > d->capacity) {
        v2k_error_set (err, V2K_EXIT_WORKDIR,
                       "disks[%zu].%s.checkpoint: %lld is past the capacity %lld", i, names[k],
                       (long long) syncs[k]->checkpoint, (long long) d->capacity);
        return -1;
      }
    }
  }
  return 0;
}

struct v2k_manifest *
v2k_manifest_parse (const char *text, size_t len, const char *source,
                    struct v2k_error *err)
{
  json_error_t jerr;
  json_t *root = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    v2k_error_set (err, V2K_EXIT_WORKDIR, "%s: not valid JSON at line %d column %d: %s",
                   source, jerr.line, jerr.column, jerr.text);
    return NULL;
  }
  json_t *schema = json_is_object (root) ? json_object_get (root, "schema") : NULL;
  if (!schema || !json_is_string (schema)) {
    v2k_error_set (err, V2K_EXIT_WORKDIR, "%s: schema: required field is missing or not a string "
                   "(is this an ablestack-v2k manifest?)", source);
    json_decref (root);
    return NULL;
  }
  if (strcmp (json_string_value (schema), V2K_MANIFEST_SCHEMA) != 0) {
    v2k_error_set (err, V2K_EXIT_WORKDIR, "%s: schema: unknown version \"%s\" (this tool reads %s)",
                   source, json_string_value (schema), V2K_MANIFEST_SCHEMA);
    json_decref (root);
    return NULL;
  }
  struct v2k_manifest *m = calloc (1, sizeof *m);
  if (!m) {
    json_decref (root);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  int r = jm_load (&manifest_schema, root, m, "", err);
  json_decref (root);
  if (r == 0)
    r = check_consistency (m, err);
  if (r == -1) {
    v2k_error_prefix (err, "%s", source);
    v2k_manifest_free (m);
    return NULL;
  }
  return m;
}

struct v2k_manifest *
v2k_manifest_load (const char *workdir, struct v2k_error *err)
{
  CLEANUP_FREE char *path = NULL;
  if (asprintf (&path, "%s/%s", workdir, V2K_MANIFEST_FILE) < 0) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  size_t len;
  CLEANUP_FREE char *text = v2k_read_file (path, 64 << 20, &len, V2K_EXIT_WORKDIR, err);
  if (!text)
    return NULL;
  return v2k_manifest_parse (text, len, path, err);
}

char *
v2k_manifest_serialize (const struct v2k_manifest *m)
{
  json_t *root = jm_dump (&manifest_schema, m);
  if (!root)
    return NULL;
  char *text = json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  json_decref (root);
  return text;
}

int
v2k_manifest_save (const struct v2k_manifest *m, const char *workdir,
                   struct v2k_error *err)
{
  CLEANUP_FREE char *text = v2k_manifest_serialize (m);
  CLEANUP_FREE char *path = NULL;
  if (!text || asprintf (&path, "%s/%s", workdir, V2K_MANIFEST_FILE) < 0) {
    path = NULL;
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  size_t len = strlen (text);
  text[len] = '\n';  /* json_dumps' NUL becomes the final newline */
  return v2k_write_file_atomic (path, text, len + 1, 0600, err);
}

void
v2k_manifest_free (struct v2k_manifest *m)
{
  if (!m)
    return;
  jm_free (&manifest_schema, m);
  free (m);
}

json_t *
v2k_error_record_json (const struct v2k_error_record *r)
{
  return r ? jm_dump (&error_record_schema, r) : json_null ();
}

void
v2k_error_record_free (struct v2k_error_record *r)
{
  if (!r)
    return;
  jm_free (&error_record_schema, r);
  free (r);
}

struct v2k_step *
v2k_manifest_step (struct v2k_manifest *m, int phase)
{
  struct v2k_step *steps[] = {
    [PHASE_INIT] = &m->phases.init, [PHASE_CBT] = &m->phases.cbt,
    [PHASE_SNAPSHOT_BASE] = &m->phases.snapshot_base, [PHASE_SYNC_BASE] = &m->phases.sync_base,
    [PHASE_SNAPSHOT_INCR] = &m->phases.snapshot_incr, [PHASE_SYNC_INCR] = &m->phases.sync_incr,
    [PHASE_SNAPSHOT_FINAL] = &m->phases.snapshot_final, [PHASE_SYNC_FINAL] = &m->phases.sync_final,
    [PHASE_CUTOVER] = &m->phases.cutover, [PHASE_DONE] = NULL,
  };
  if (phase < 0 || phase > PHASE_DONE)
    return NULL;
  return steps[phase];
}

struct v2k_sync *
v2k_disk_sync (struct v2k_disk *d, int kind)
{
  return kind == SNAP_BASE ? &d->base : kind == SNAP_INCR ? &d->incr : &d->final;
}

const struct v2k_snapshot *
v2k_manifest_latest_snapshot (const struct v2k_manifest *m, int kind)
{
  const struct v2k_snapshot *s = NULL;
  for (size_t i = 0; i < m->n_snapshots; i++)
    if (!m->snapshots[i].removed && (kind < 0 || m->snapshots[i].kind == kind))
      s = &m->snapshots[i];
  return s;
}

void
v2k_set_str (char **dst, const char *src)
{
  free (*dst);
  *dst = src ? strdup (src) : NULL;
}
