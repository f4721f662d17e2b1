/* The pipeline's steps on an open session. The step commands (cbt,
 * snapshot, sync, verify, cleanup) parse their options and call one of
 * these; cutover and run call several in a row on one session, with one
 * lock and one vCenter login. Steps do not print unless given OUT. */
#ifndef V2K_CMD_STEPS_H
#define V2K_CMD_STEPS_H

#include <stdio.h>
#include "session.h"
#include "../state/plan.h"
#include "../cloud/register.h"

/* init: its options, shared with run. */
enum {
  OPT_INIT_VM = 1400, OPT_INIT_DST, OPT_INIT_ROOT, OPT_INIT_FORMAT, OPT_INIT_STORAGE, OPT_INIT_TMAP,
  OPT_INIT_TRANSPORT, OPT_INIT_VDDK_LIBDIR, OPT_INIT_VDDK_TP, OPT_INIT_VDDK_TRANSPORTS,
  OPT_INIT_DSMAP, OPT_INIT_SOURCE_NBD, OPT_INIT_CEPH_CONF, OPT_INIT_CEPH_ID,
};
#define V2K_INIT_OPTIONS \
  { "vm", required_argument, NULL, OPT_INIT_VM }, \
  { "dst", required_argument, NULL, OPT_INIT_DST }, \
  { "workdir-root", required_argument, NULL, OPT_INIT_ROOT }, \
  { "target-format", required_argument, NULL, OPT_INIT_FORMAT }, \
  { "target-storage", required_argument, NULL, OPT_INIT_STORAGE }, \
  { "target-map", required_argument, NULL, OPT_INIT_TMAP }, \
  { "transport", required_argument, NULL, OPT_INIT_TRANSPORT }, \
  { "vddk-libdir", required_argument, NULL, OPT_INIT_VDDK_LIBDIR }, \
  { "vddk-thumbprint", required_argument, NULL, OPT_INIT_VDDK_TP }, \
  { "vddk-transports", required_argument, NULL, OPT_INIT_VDDK_TRANSPORTS }, \
  { "datastore-map", required_argument, NULL, OPT_INIT_DSMAP }, \
  { "source-nbd", required_argument, NULL, OPT_INIT_SOURCE_NBD }, \
  { "ceph-conf", required_argument, NULL, OPT_INIT_CEPH_CONF }, \
  { "ceph-id", required_argument, NULL, OPT_INIT_CEPH_ID }
#define V2K_INIT_HELP \
  "  --vm SPEC               vm-123, an inventory path DC/vm/folder/name, or a name\n" \
  "  --dst DIR               where file targets go by default (<dst>/<vm>-disk<N>.<fmt>)\n" \
  "  --workdir-root DIR      create the workdir under DIR instead of /var/lib/ablestack-v2k\n" \
  "  --target-format F       qcow2 (default) or raw\n" \
  "  --target-storage S      file (default), block or rbd\n" \
  "  --target-map DISK=PATH  per disk (id like scsi0:0); required for block (/dev/…)\n" \
  "                          and rbd (rbd:pool/image). Repeatable\n" \
  "  --transport T           vddk (default), file or nbd\n" \
  "  --vddk-libdir DIR       the VDDK install (or VDDK_LIBDIR)\n" \
  "  --vddk-thumbprint TP    SHA-1 thumbprint VDDK checks (default: the certificate of\n" \
  "                          the vCenter or ESXi this command connects to)\n" \
  "  --vddk-transports LIST  VDDK transport modes (default nbdssl:nbd)\n" \
  "  --datastore-map NAME=DIR  a datastore reachable at DIR, for --transport file. Repeatable\n" \
  "  --source-nbd URI        for --transport nbd (experts and tests); {key} in it\n" \
  "                          becomes each disk's device key\n" \
  "  --ceph-conf FILE        rbd storage: the Ceph configuration (default /etc/ceph/ceph.conf)\n" \
  "  --ceph-id ID            rbd storage: the client id (default admin)\n"

struct v2k_init_opts {
  const char *vm_spec, *root;
  struct v2k_plan_args plan;
};
void v2k_init_opts_init (struct v2k_init_opts *o);
void v2k_init_opts_free (struct v2k_init_opts *o);
int v2k_init_getopt (int c, const char *arg, struct v2k_init_opts *o, struct v2k_error *err);
/* Checks the options that need no vCenter. */
int v2k_init_check (struct v2k_init_opts *o, struct v2k_error *err);
/* Reads the inventory, plans the targets and creates the workdir (G->workdir,
 * else one under the root); *WORKDIR and *RUN_ID are to be freed. */
int v2k_step_init (struct v2k_global *g, struct v2k_init_opts *o, struct v2k_conn_args *conn,
                   char **workdir, char **run_id, struct v2k_error *err);

/* cbt enable */
int v2k_step_cbt_enable (struct v2k_session *s, long task_timeout, FILE *out,
                         struct v2k_error *err);

/* snapshot base|incr|final */
struct v2k_snapshot_opts {
  int kind;                 /* enum v2k_snapshot_kind */
  const char *name;         /* NULL: ablestack-v2k-<run_id>-<kind>-<seq> */
  bool quiesce;
  bool allow_running;       /* final while the VM is on */
  bool reuse_unsynced;      /* return this run's unsynced snapshot of KIND instead of refusing */
  long task_timeout;
};
int v2k_step_snapshot (struct v2k_session *s, const struct v2k_snapshot_opts *o,
                       const struct v2k_snapshot **snap, bool *adopted, struct v2k_error *err);

/* The snapshot as JSON: moref, name, kind, seq, disks (id, key, change_id, file_name). */
json_t *v2k_snapshot_json (const struct v2k_snapshot *snap, const struct v2k_manifest *m);

/* sync base|incr|final: the tuning options, shared with cutover and run. */
enum {
  OPT_SYNC_FULL = 1100, OPT_SYNC_JOBS, OPT_SYNC_REQ, OPT_SYNC_INFLIGHT, OPT_SYNC_GAP,
  OPT_SYNC_CONNS, OPT_SYNC_FORCE_BLOCK, OPT_SYNC_CHECKPOINT, OPT_SYNC_CEPH_CONF,
  OPT_SYNC_CEPH_ID, OPT_SYNC_CEPH_TIMEOUT,
};
#define V2K_SYNC_TUNING_OPTIONS \
  { "jobs", required_argument, NULL, OPT_SYNC_JOBS }, \
  { "request-size", required_argument, NULL, OPT_SYNC_REQ }, \
  { "max-inflight", required_argument, NULL, OPT_SYNC_INFLIGHT }, \
  { "coalesce-gap", required_argument, NULL, OPT_SYNC_GAP }, \
  { "connections", required_argument, NULL, OPT_SYNC_CONNS }, \
  { "force-block-device", no_argument, NULL, OPT_SYNC_FORCE_BLOCK }, \
  { "checkpoint-interval", required_argument, NULL, OPT_SYNC_CHECKPOINT }, \
  { "ceph-conf", required_argument, NULL, OPT_SYNC_CEPH_CONF }, \
  { "ceph-id", required_argument, NULL, OPT_SYNC_CEPH_ID }, \
  { "ceph-timeout", required_argument, NULL, OPT_SYNC_CEPH_TIMEOUT }
#define V2K_SYNC_TUNING_HELP \
  "Copy tuning:\n" \
  "  --jobs N             disks copied at once (default min(disks, 4))\n" \
  "  --request-size N     bytes per request (default 2M for vddk, else 1M)\n" \
  "  --max-inflight N     bytes in flight per disk (default 64M)\n" \
  "  --coalesce-gap N     join areas less than N apart (default 64K)\n" \
  "  --connections N      NBD connections per server (default 4)\n" \
  "  --checkpoint-interval SEC  base: flush and record a resume point this often\n" \
  "                       (default 2)\n" \
  "  --force-block-device skip the signature check of block targets\n" \
  "  --ceph-conf FILE     rbd: the Ceph configuration (default: init's, else\n" \
  "                       /etc/ceph/ceph.conf)\n" \
  "  --ceph-id ID         rbd: the client id (default: init's, else admin)\n" \
  "  --ceph-timeout SEC   rbd: give up reaching the monitors after SEC (default 10)\n"

struct v2k_sync_opts {
  bool full, force_block;
  int64_t jobs, request_size, max_inflight, coalesce_gap, connections, ceph_timeout;
  double checkpoint;
  const char *ceph_conf, *ceph_id;
};
void v2k_sync_opts_init (struct v2k_sync_opts *o);
/* 1 if C was a sync option, 0 if not, -1 on a bad value. */
int v2k_sync_getopt (int c, const char *arg, struct v2k_sync_opts *o, struct v2k_error *err);
int v2k_step_sync (struct v2k_session *s, const struct v2k_conn_args *conn, int kind,
                   const struct v2k_sync_opts *o, bool progress_bar, struct v2k_error *err);

/* verify: with KIND < 0, the latest snapshot still on vCenter, or, when
 * none is left after a cutover, the powered-off VM's own disks. */
struct v2k_verify_opts {
  int64_t samples;          /* 0: every chunk */
  int kind;
};
int v2k_step_verify (struct v2k_session *s, const struct v2k_conn_args *conn,
                     const struct v2k_verify_opts *o, FILE *out, struct v2k_error *err);

/* Removes this run's snapshots: recorded ones by moref, then unrecorded ones
 * found by this run's name prefix. *REMOVED counts them. */
int v2k_step_remove_snapshots (struct v2k_session *s, long task_timeout, int *removed,
                               struct v2k_error *err);

/* cleanup (the command, and run's last phase; in cleanup.c): stops the
 * helpers left in the run directory, removes this run's snapshots unless
 * KEEP_SNAPSHOTS (connecting with CONN if the session is not), records the
 * cleanup step done and writes the cleanup.done event (WORKDIR_GOES: the
 * caller removes the workdir next). *STOPPED and *REMOVED count. */
int v2k_step_cleanup (struct v2k_session *s, struct v2k_conn_args *conn, bool keep_snapshots,
                      bool workdir_goes, int *stopped, int *removed, struct v2k_error *err);

/* ABLESTACK cloud registration options (cutover, register, run). */
enum {
  OPT_CLOUD_ENDPOINT = 1600, OPT_CLOUD_API_KEY, OPT_CLOUD_SECRET_FILE, OPT_CLOUD_CRED_FILE,
  OPT_CLOUD_CMK_PROFILE, OPT_CLOUD_CMK_CONFIG, OPT_CLOUD_SIGNATURE, OPT_CLOUD_CA_FILE,
  OPT_CLOUD_INSECURE, OPT_CLOUD_ZONE, OPT_CLOUD_OFFERING, OPT_CLOUD_STORAGE, OPT_CLOUD_DISK_OFFERING,
  OPT_CLOUD_HOST, OPT_CLOUD_NET_MAP, OPT_CLOUD_ACCOUNT, OPT_CLOUD_DOMAIN, OPT_CLOUD_PROJECT,
  OPT_CLOUD_NAME, OPT_CLOUD_CPU_SPEED, OPT_CLOUD_ON_FAILURE, OPT_CLOUD_JOB_TIMEOUT,
};
#define V2K_CLOUD_OPTIONS \
  { "cloud-endpoint", required_argument, NULL, OPT_CLOUD_ENDPOINT }, \
  { "cloud-api-key", required_argument, NULL, OPT_CLOUD_API_KEY }, \
  { "cloud-secret-key-file", required_argument, NULL, OPT_CLOUD_SECRET_FILE }, \
  { "cloud-cred-file", required_argument, NULL, OPT_CLOUD_CRED_FILE }, \
  { "cmk-profile", required_argument, NULL, OPT_CLOUD_CMK_PROFILE }, \
  { "cmk-config", required_argument, NULL, OPT_CLOUD_CMK_CONFIG }, \
  { "cloud-signature", required_argument, NULL, OPT_CLOUD_SIGNATURE }, \
  { "cloud-ca-file", required_argument, NULL, OPT_CLOUD_CA_FILE }, \
  { "cloud-insecure", no_argument, NULL, OPT_CLOUD_INSECURE }, \
  { "cloud-zone", required_argument, NULL, OPT_CLOUD_ZONE }, \
  { "cloud-service-offering", required_argument, NULL, OPT_CLOUD_OFFERING }, \
  { "cloud-storage", required_argument, NULL, OPT_CLOUD_STORAGE }, \
  { "cloud-disk-offering", required_argument, NULL, OPT_CLOUD_DISK_OFFERING }, \
  { "cloud-host", required_argument, NULL, OPT_CLOUD_HOST }, \
  { "cloud-net-map", required_argument, NULL, OPT_CLOUD_NET_MAP }, \
  { "cloud-account", required_argument, NULL, OPT_CLOUD_ACCOUNT }, \
  { "cloud-domain", required_argument, NULL, OPT_CLOUD_DOMAIN }, \
  { "cloud-project", required_argument, NULL, OPT_CLOUD_PROJECT }, \
  { "cloud-name", required_argument, NULL, OPT_CLOUD_NAME }, \
  { "cloud-cpu-speed", required_argument, NULL, OPT_CLOUD_CPU_SPEED }, \
  { "on-failure", required_argument, NULL, OPT_CLOUD_ON_FAILURE }, \
  { "cloud-job-timeout", required_argument, NULL, OPT_CLOUD_JOB_TIMEOUT }
#define V2K_CLOUD_HELP \
  "ABLESTACK cloud (--target-provider ablestack-cloud, or the register command):\n" \
  "  --cloud-endpoint URL      http(s)://mgmt:8080/client/api\n" \
  "  --cloud-api-key KEY       --cloud-secret-key-file FILE (mode 0600)\n" \
  "  --cloud-cred-file FILE    ini or KEY=VALUE (endpoint, api_key, secret_key); mode 0600\n" \
  "  --cmk-profile NAME        a CloudMonkey profile (--cmk-config, default ~/.cmk/config)\n" \
  "                            else ABLESTACK_V2K_CLOUD_ENDPOINT/_API_KEY/_SECRET_KEY\n" \
  "  --cloud-signature auto|sha256|sha1|sha512  (default auto: probed with listApis)\n" \
  "  --cloud-ca-file PEM       --cloud-insecure (no TLS verification; recorded)\n" \
  "  --cloud-zone ID           --cloud-service-offering ID   --cloud-storage POOL-ID\n" \
  "  --cloud-disk-offering ID  (default: the tool's own writeback offering)\n" \
  "  --cloud-host ID           for host-local pools\n" \
  "  --cloud-net-map 'VMWARE NET=NETWORK-ID'  per NIC. Repeatable\n" \
  "  --cloud-account A --cloud-domain D, or --cloud-project P   the owner\n" \
  "  --cloud-name NAME         the VM's name (default: the source's, made a host name)\n" \
  "  --cloud-cpu-speed MHZ     when the offering leaves it open (default 1000)\n" \
  "  --on-failure rollback|keep  before a start (default rollback; disks are never deleted)\n" \
  "  --cloud-job-timeout SEC   wait this long for each cloud job (default 1800)\n"

void v2k_cloud_opts_init (struct v2k_register_opts *o);
void v2k_cloud_opts_free (struct v2k_register_opts *o);
int v2k_cloud_getopt (int c, const char *arg, struct v2k_register_opts *o, struct v2k_error *err);

/* cutover: its options, shared with run. */
enum { SHUTDOWN_GUEST, SHUTDOWN_POWEROFF, SHUTDOWN_MANUAL };
enum { PROVIDER_LIBVIRT, PROVIDER_CLOUD, PROVIDER_NONE };
extern const char *const v2k_provider_names[];   /* libvirt, ablestack-cloud, none */
extern const char *const v2k_shutdown_names[];   /* "guest", "poweroff", "manual" */
enum {
  OPT_CUT_SHUTDOWN = 1200, OPT_CUT_SHUTDOWN_TIMEOUT, OPT_CUT_FORCE_POWEROFF, OPT_CUT_DEFINE_ONLY,
  OPT_CUT_START, OPT_CUT_LIBVIRT_URI, OPT_CUT_NAME, OPT_CUT_DISK_BUS, OPT_CUT_NIC_MODEL,
  OPT_CUT_NET_MAP, OPT_CUT_NET_DEFAULT, OPT_CUT_KEEP_SNAPSHOTS, OPT_CUT_RBD_SECRET,
  OPT_CUT_CONVERT, OPT_CUT_CONVERT_ACCEL, OPT_CUT_PROVIDER,
};
#define V2K_CUTOVER_OPTIONS \
  { "shutdown", required_argument, NULL, OPT_CUT_SHUTDOWN }, \
  { "shutdown-timeout", required_argument, NULL, OPT_CUT_SHUTDOWN_TIMEOUT }, \
  { "force-poweroff", no_argument, NULL, OPT_CUT_FORCE_POWEROFF }, \
  { "define-only", no_argument, NULL, OPT_CUT_DEFINE_ONLY }, \
  { "start", no_argument, NULL, OPT_CUT_START }, \
  { "libvirt-uri", required_argument, NULL, OPT_CUT_LIBVIRT_URI }, \
  { "name", required_argument, NULL, OPT_CUT_NAME }, \
  { "disk-bus", required_argument, NULL, OPT_CUT_DISK_BUS }, \
  { "nic-model", required_argument, NULL, OPT_CUT_NIC_MODEL }, \
  { "net-map", required_argument, NULL, OPT_CUT_NET_MAP }, \
  { "net-default", required_argument, NULL, OPT_CUT_NET_DEFAULT }, \
  { "keep-snapshots", no_argument, NULL, OPT_CUT_KEEP_SNAPSHOTS }, \
  { "libvirt-rbd-secret", required_argument, NULL, OPT_CUT_RBD_SECRET }, \
  { "convert", required_argument, NULL, OPT_CUT_CONVERT }, \
  { "convert-accel", required_argument, NULL, OPT_CUT_CONVERT_ACCEL }, \
  { "target-provider", required_argument, NULL, OPT_CUT_PROVIDER }, \
  V2K_CLOUD_OPTIONS
#define V2K_CUTOVER_HELP \
  "Cutover:\n" \
  "  --shutdown guest|poweroff|manual  how the source stops (default guest: a\n" \
  "                       guest shutdown through VMware Tools)\n" \
  "  --shutdown-timeout SEC  wait this long for the guest (default 300)\n" \
  "  --force-poweroff     power off when the guest shutdown times out\n" \
  "  --define-only        define a libvirt domain, left off unless --start (v1's\n" \
  "                       'cutover --define-only --start'); refused with a provider\n" \
  "                       other than libvirt\n" \
  "  --start              start the domain once defined\n" \
  "  --libvirt-uri URI    (default LIBVIRT_DEFAULT_URI, else qemu:///system)\n" \
  "  --name NAME          the domain's name (default the source VM's)\n" \
  "  --convert auto|required|off  convert the guest to virtio with virt-v2v-in-place\n" \
  "                       (default auto: fall back to SATA + e1000e if it cannot)\n" \
  "  --convert-accel kvm|tcg  how libguestfs runs (default: probed)\n" \
  "  --disk-bus sata|virtio|virtio-scsi  (default virtio when converted, else sata)\n" \
  "  --nic-model e1000e|virtio  (default virtio when converted, else e1000e)\n" \
  "  --net-map 'VMWARE NET=bridge:BR|network:NET'  per source network. Repeatable\n" \
  "  --net-default bridge:BR|network:NET  for networks without a --net-map\n" \
  "  --libvirt-rbd-secret UUID  the libvirt secret holding the cephx key (rbd)\n" \
  "  --keep-snapshots     leave this run's snapshots on vCenter\n" \
  "  --target-provider libvirt|ablestack-cloud|none  where the VM goes (default\n" \
  "                       libvirt; none: copy and convert only, then 'register')\n" \
  "\n" V2K_CLOUD_HELP

struct v2k_cutover_opts {
  int shutdown;              /* SHUTDOWN_* */
  int64_t shutdown_timeout;
  bool force_poweroff, define_only, start, keep_snapshots;
  const char *libvirt_uri, *name, *net_default, *rbd_secret;
  int disk_bus, nic_model;   /* enum v2k_disk_bus / v2k_nic_model; -1: by conversion */
  int convert;               /* enum v2k_convert_mode */
  int provider;              /* PROVIDER_* */
  struct v2k_register_opts cloud;
  int convert_accel;         /* enum v2k_convert_accel; ACCEL_PROBE */
  const char **net_map;
  size_t n_net_map;
  const struct v2k_verify_opts *verify;  /* run: verify after the final sync, before define */
};
void v2k_cutover_opts_init (struct v2k_cutover_opts *o);
void v2k_cutover_opts_free (struct v2k_cutover_opts *o);
int v2k_cutover_getopt (int c, const char *arg, struct v2k_cutover_opts *o, struct v2k_error *err);
/* --define-only with a provider other than libvirt: a usage error of COMMAND. */
int v2k_cutover_define_only_check (const struct v2k_cutover_opts *o, const char *command,
                                   struct v2k_error *err);

/* Registers the copied VM in the cloud: preflight, then apply (register
 * command, and cutover with --target-provider ablestack-cloud after the
 * final sync). *RESULT (may be NULL) gets a JSON summary. */
int v2k_step_register (struct v2k_session *s, const struct v2k_register_opts *o, bool preflight_only,
                       json_t **result, struct v2k_error *err);

/* The cloud record as JSON (flavour, vm id and name, step, volumes). */
json_t *v2k_cloud_summary (const struct v2k_manifest *m);

/* Converts the guest (convert command, and cutover after the final sync). */
int v2k_step_convert (struct v2k_session *s, int accel, FILE *out, struct v2k_error *err);

/* Shutdown, final snapshot and sync, domain XML, define (and start), then
 * this run's snapshots removed. Each finished step is recorded, so a re-run
 * continues from the step that failed. *RESULT (may be NULL) gets a JSON
 * summary. */
int v2k_step_cutover (struct v2k_session *s, const struct v2k_conn_args *conn,
                      const struct v2k_cutover_opts *o, const struct v2k_sync_opts *so,
                      bool progress_bar, FILE *out, json_t **result, struct v2k_error *err);

#endif
