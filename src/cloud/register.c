#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "register.h"
#include "../transfer/rbd.h"
#include "../util/cleanup.h"
#include "../util/crashpoint.h"
#include "../util/strbuf.h"

#define P(n, v) ((struct v2k_cloud_param) { (n), (v) })

static void
ev (struct v2k_register_ctx *rc, enum v2k_event_level level, const char *name, json_t *detail)
{
  struct v2k_error ignored = { 0 };
  v2k_event (rc->ev, level, "cutover", NULL, name, detail, &ignored);
}

static int
save (struct v2k_register_ctx *rc, struct v2k_error *err)
{
  return rc->save (rc->opaque, err);
}

static void
step (struct v2k_register_ctx *rc, const char *s)
{
  v2k_set_str (&rc->m->cloud.step, s);
  ev (rc, EV_INFO, "cloud.step", json_pack ("{s:s}", "step", s));
}

static const char *
jstr (json_t *o, const char *k)
{
  return json_string_value (json_object_get (o, k));
}

/* The first object a list command returns, or NULL (with no error). */
static int
lookup_one (struct v2k_register_ctx *rc, const char *cmd, const char *objname,
            const struct v2k_cloud_param *p, size_t n, json_t **obj, struct v2k_error *err)
{
  json_t *arr;
  *obj = NULL;
  if (v2k_cloud_list (rc->cloud, cmd, objname, p, n, &arr, err) == -1)
    return -1;
  if (json_array_size (arr) > 0)
    *obj = json_incref (json_array_get (arr, 0));
  json_decref (arr);
  return 0;
}

/* Submits an async command unless *JOB is already recorded, saves the job
 * id before polling it, and returns its jobresult. *ID gets the object id
 * that create commands return at once (may be NULL). */
static int
submit_and_wait (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, const char *cmd,
                 const struct v2k_cloud_param *p, size_t n, char **job, json_t **result,
                 struct v2k_error *err)
{
  if (!*job) {
    json_t *r;
    if (v2k_cloud_call (rc->cloud, cmd, p, n, true, &r, err) == -1)
      return -1;
    v2k_set_str (job, jstr (r, "jobid"));
    json_decref (r);
    if (!*job) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "cloud API %s returned no job id", cmd);
      return -1;
    }
    if (save (rc, err) == -1)
      return -1;
    char point[96];
    snprintf (point, sizeof point, "cloud:%s", cmd);
    v2k_crashpoint (point);
  }
  return v2k_cloud_job_wait (rc->cloud, *job, o->job_timeout > 0 ? o->job_timeout : 1800,
                             rc->stop, result, err);
}

/* ---- the plan ---- */

/* A host name the cloud accepts: lowercase letters, digits and hyphens,
 * 1-63 characters, starting with a letter. */
static char *
sanitize_name (const char *src)
{
  char buf[64];
  size_t n = 0;
  for (const char *s = src; *s && n < 63; s++) {
    char c = (char) tolower ((unsigned char) *s);
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
      c = '-';
    if (c == '-' && (n == 0 || buf[n - 1] == '-'))
      continue;
    if (n == 0 && c >= '0' && c <= '9') {
      buf[n++] = 'v';
      buf[n++] = 'm';
      buf[n++] = '-';
    }
    buf[n++] = c;
  }
  while (n > 0 && buf[n - 1] == '-')
    n--;
  buf[n] = '\0';
  return strdup (n ? buf : "migrated-vm");
}

static const char *
mapped_network (const struct v2k_register_opts *o, const char *network)
{
  size_t len = strlen (network ? network : "");
  for (size_t i = 0; i < o->n_net_map; i++)
    if (network && strncmp (o->net_map[i], network, len) == 0 && o->net_map[i][len] == '=')
      return o->net_map[i] + len + 1;
  return NULL;
}

static bool
mac_ok (const char *mac)
{
  unsigned int b[6];
  char tail;
  if (!mac || sscanf (mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
    return false;
  return (b[0] & 1) == 0;       /* unicast */
}

/* What importVolume is given for disk D: the basename in a file pool's
 * directory, or the RBD image name. */
static char *
import_path (const struct v2k_manifest *m, const struct v2k_disk *d, json_t *pool,
             struct v2k_error *err)
{
  const char *type = jstr (pool, "type"), *ppath = jstr (pool, "path");
  if (m->target.storage == STORAGE_BLOCK) {
    v2k_error_set (err, V2K_EXIT_USAGE, "disk %s is a block device (%s): the cloud imports only "
                   "from its storage pools (file or RBD targets)", d->id, d->target_path);
    return NULL;
  }
  if (m->target.storage == STORAGE_RBD) {
    char cpool[256], image[256];
    if (!type || strcasecmp (type, "RBD") != 0) {
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s is an RBD image, but --cloud-storage is a %s pool",
                     d->id, type ? type : "?");
      return NULL;
    }
    if (v2k_rbd_parse (d->target_path, cpool, sizeof cpool, image, sizeof image) == -1)
      return NULL;
    if (ppath && strcmp (ppath, cpool) != 0) {
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s is in Ceph pool '%s', but --cloud-storage's pool is "
                     "'%s'", d->id, cpool, ppath);
      return NULL;
    }
    return strdup (image);
  }
  static const char *const file_types[] = { "Filesystem", "NetworkFilesystem", "SharedMountPoint", NULL };
  bool ok = false;
  for (size_t i = 0; type && file_types[i]; i++)
    ok |= strcasecmp (type, file_types[i]) == 0;
  if (!ok) {
    v2k_error_set (err, V2K_EXIT_USAGE, "disk %s is a file, but --cloud-storage is a %s pool", d->id,
                   type ? type : "?");
    return NULL;
  }
  const char *slash = strrchr (d->target_path, '/');
  size_t dlen = slash ? (size_t) (slash - d->target_path) : 0;
  if (!slash || !ppath || strlen (ppath) != dlen || strncmp (ppath, d->target_path, dlen) != 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "disk %s (%s) is not directly in the pool directory %s of "
                   "--cloud-storage: put the targets there (init --dst %s)", d->id, d->target_path,
                   ppath ? ppath : "?", ppath ? ppath : "?");
    return NULL;
  }
  return strdup (slash + 1);
}

static void
cloud_record_reset (struct v2k_cloud_record *c)
{
  for (size_t i = 0; i < c->n_volumes; i++) {
    struct v2k_cloud_volume *v = &c->volumes[i];
    v2k_set_str (&v->import_job, NULL);
    v2k_set_str (&v->volume_id, NULL);
    v2k_set_str (&v->attach_job, NULL);
    v->attached = false;
    v->device_id = 0;
  }
  for (size_t i = 0; i < c->n_nics; i++) {
    v2k_set_str (&c->nics[i].job, NULL);
    c->nics[i].added = false;
  }
  v2k_set_str (&c->vm_id, NULL);
  v2k_set_str (&c->deploy_job, NULL);
  v2k_set_str (&c->root_job, NULL);
  v2k_set_str (&c->start_job, NULL);
}

/* The per-disk and per-NIC records, made once. */
static int
record_init (struct v2k_manifest *m)
{
  struct v2k_cloud_record *c = &m->cloud;
  /* An empty array loaded from the manifest still has a placeholder. */
  if (c->n_volumes == 0) {
    free (c->volumes);
    if (!(c->volumes = calloc (m->n_disks, sizeof *c->volumes)))
      return -1;
    c->n_volumes = m->n_disks;
    for (size_t i = 0; i < m->n_disks; i++)
      c->volumes[i].disk = strdup (m->disks[i].id);
  }
  if (c->n_nics == 0 && m->n_nics > 1) {
    free (c->nics);
    if (!(c->nics = calloc (m->n_nics - 1, sizeof *c->nics)))
      return -1;
    c->n_nics = m->n_nics - 1;
  }
  return 0;
}

/* ---- preflight ---- */

static int
require_one (struct v2k_register_ctx *rc, const char *cmd, const char *objname, const char *id,
             const char *option, json_t **obj, struct v2k_error *err)
{
  if (!id || !*id) {
    v2k_error_set (err, V2K_EXIT_USAGE, "cloud registration needs %s", option);
    return -1;
  }
  struct v2k_cloud_param p[] = { P ("id", id), P ("listall", "true") };
  if (lookup_one (rc, cmd, objname, p, 2, obj, err) == -1)
    return -1;
  if (!*obj) {
    v2k_error_set (err, V2K_EXIT_USAGE, "%s: the cloud has no %s with id %s", option, objname, id);
    return -1;
  }
  return 0;
}

static int
preflight_apis (struct v2k_register_ctx *rc, struct v2k_error *err)
{
  json_t *apis;
  if (v2k_cloud_list (rc->cloud, "listApis", "api", NULL, 0, &apis, err) == -1)
    return -1;
  bool mold = false, upstream = false;
  static const char *const need[] = { "importVolume", "listVolumesForImport", "attachVolume",
                                      "updateVolume", "startVirtualMachine", "queryAsyncJobResult",
                                      "unmanageVolume", "detachVolume", "listVolumes", NULL };
  bool have[16] = { false };
  size_t i;
  json_t *a;
  json_array_foreach (apis, i, a) {
    const char *n = jstr (a, "name");
    if (!n)
      continue;
    mold |= strcmp (n, "deployVirtualMachineForVolume") == 0;
    upstream |= strcmp (n, "importVm") == 0;
    for (size_t k = 0; need[k]; k++)
      have[k] |= strcmp (n, need[k]) == 0;
  }
  json_decref (apis);
  for (size_t k = 0; need[k]; k++)
    if (!have[k]) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud API lacks %s (listApis): this management server "
                     "cannot register existing disks, or the API key lacks the root admin role", need[k]);
      return -1;
    }
  if (!mold && !upstream) {
    v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud API has neither deployVirtualMachineForVolume (Mold) "
                   "nor importVm (CloudStack 4.19+)");
    return -1;
  }
  v2k_set_str (&rc->m->cloud.flavour, mold ? "mold" : "upstream");
  return 0;
}

static int
preflight_nics (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_manifest *m = rc->m;
  struct strbuf missing = { 0 };
  for (size_t i = 0; i < m->n_nics; i++)
    if (!mapped_network (o, m->nics[i].network))
      sb_addf (&missing, "%s'%s'", missing.len ? ", " : "", m->nics[i].network ? m->nics[i].network : "");
  if (missing.len) {
    v2k_error_set (err, V2K_EXIT_USAGE, "these VMware networks need a cloud network: %s; pass "
                   "--cloud-net-map 'NETWORK=<network id>' for each", missing.s);
    sb_free (&missing);
    return -1;
  }
  sb_free (&missing);
  if (m->n_nics == 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "VM %s has no NIC, and the cloud needs at least one network",
                   m->source.vm.name);
    return -1;
  }
  for (size_t i = 0; i < m->n_nics; i++) {
    const char *net = mapped_network (o, m->nics[i].network), *mac = m->nics[i].mac;
    if (!mac_ok (mac)) {
      v2k_error_set (err, V2K_EXIT_USAGE, "NIC %s: MAC %s is not a valid unicast address",
                     m->nics[i].label ? m->nics[i].label : "?", mac ? mac : "(none)");
      return -1;
    }
    for (size_t k = 0; k < i; k++) {
      if (strcasecmp (m->nics[k].mac, mac) == 0) {
        v2k_error_set (err, V2K_EXIT_USAGE, "two NICs have MAC %s", mac);
        return -1;
      }
      if (strcmp (mapped_network (o, m->nics[k].network), net) == 0) {
        v2k_error_set (err, V2K_EXIT_USAGE, "NICs %zu and %zu both map to cloud network %s: the cloud "
                       "merges them into one NIC; give each NIC its own network in --cloud-net-map", k, i, net);
        return -1;
      }
    }
    json_t *n;
    if (require_one (rc, "listNetworks", "network", net, "--cloud-net-map", &n, err) == -1)
      return -1;
    json_decref (n);
  }
  return 0;
}

static int64_t
config_int (struct v2k_register_ctx *rc, const char *name, int64_t dflt)
{
  struct v2k_error ignored = { 0 };
  struct v2k_cloud_param p[] = { P ("name", name) };
  json_t *c = NULL;
  if (lookup_one (rc, "listConfigurations", "configuration", p, 1, &c, &ignored) == -1 || !c)
    return dflt;
  const char *v = jstr (c, "value");
  int64_t r = v ? strtoll (v, NULL, 10) : dflt;
  json_decref (c);
  return r > 0 ? r : dflt;
}

static int
preflight_disks (struct v2k_register_ctx *rc, json_t *pool, struct v2k_error *err)
{
  struct v2k_manifest *m = rc->m;
  int64_t min = config_int (rc, "custom.diskoffering.size.min", 1);
  int64_t max = config_int (rc, "custom.diskoffering.size.max", 1024);
  for (size_t i = 0; i < m->n_disks; i++) {
    struct v2k_disk *d = &m->disks[i];
    struct v2k_cloud_volume *v = &m->cloud.volumes[i];
    CLEANUP_FREE char *path = import_path (m, d, pool, err);
    if (!path)
      return -1;
    v2k_set_str (&v->path, path);
    int64_t gib = d->capacity >> 30;
    if (gib < min || gib > max) {
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s is %lld GiB, outside the cloud's import limits "
                     "(custom.diskoffering.size.min %lld, .max %lld GiB): change those settings or "
                     "give a fixed-size --cloud-disk-offering", d->id, (long long) gib,
                     (long long) min, (long long) max);
      return -1;
    }
    if (v->volume_id || v->import_job)
      continue;                 /* imported (or being imported) by an earlier run */
    struct v2k_cloud_param p[] = { P ("storageid", jstr (pool, "id")), P ("path", path) };
    json_t *c;
    if (lookup_one (rc, "listVolumesForImport", "volumeforimport", p, 2, &c, err) == -1)
      return -1;
    if (!c) {
      /* Imported by a run whose reply was lost: it is managed now, under
       * the name this run gives it. */
      char name[128];
      snprintf (name, sizeof name, "%s-disk%zu", m->cloud.vm_name, i);
      struct v2k_cloud_param q[] = { P ("storageid", jstr (pool, "id")), P ("name", name), P ("listall", "true") };
      json_t *found;
      if (lookup_one (rc, "listVolumes", "volume", q, 3, &found, err) == -1)
        return -1;
      bool ours = found && jstr (found, "path") && strcmp (jstr (found, "path"), path) == 0;
      if (ours) {
        v2k_set_str (&v->volume_id, jstr (found, "id"));
        ev (rc, EV_INFO, "cloud.volume_found", json_pack ("{s:s, s:s?}", "disk", d->id, "volume", v->volume_id));
      }
      json_decref (found);
      if (ours)
        continue;
      v2k_error_set (err, V2K_EXIT_USAGE, "the cloud does not list disk %s (%s) for import on pool %s: "
                     "it is missing, already managed, or in another pool", d->id, path, jstr (pool, "name"));
      return -1;
    }
    json_t *det = json_object_get (c, "details");
    const char *locked = jstr (det, "IS_LOCKED"), *fmt = jstr (c, "format");
    json_int_t vsize = json_integer_value (json_object_get (c, "virtualsize"));
    const char *want_fmt = m->target.storage == STORAGE_FILE ? v2k_format_names[m->target.format] : "raw";
    int r = 0;
    if (locked && strcmp (locked, "true") == 0)
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s (%s) is locked by another process (qemu-nbd or a "
                     "VM): stop it, then run again", d->id, path), r = -1;
    else if (json_object_get (det, "BACKING_FILE"))
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s (%s) has a backing file; the cloud imports only "
                     "standalone images", d->id, path), r = -1;
    else if (fmt && strcasecmp (fmt, want_fmt) != 0)
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s (%s): the cloud sees format %s, the target is %s",
                     d->id, path, fmt, want_fmt), r = -1;
    else if (vsize && vsize != d->capacity)
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s (%s): the cloud sees %lld bytes, the disk has %lld",
                     d->id, path, (long long) vsize, (long long) d->capacity), r = -1;
    json_decref (c);
    if (r == -1)
      return -1;
  }
  return 0;
}

int
v2k_register_preflight (struct v2k_register_ctx *rc, const struct v2k_register_opts *o,
                        struct v2k_error *err)
{
  struct v2k_manifest *m = rc->m;
  struct v2k_cloud_creds cr;
  if (v2k_cloud_creds_resolve (&o->creds, &cr, err) == -1)
    return -1;
  int alg = o->signature >= 0 ? o->signature : cr.alg;
  int recorded = m->cloud.algorithm ? jm_enum_index (v2k_cloud_alg_names, m->cloud.algorithm) : -1;
  struct v2k_cloud_opts co = { .endpoint = cr.endpoint, .apikey = cr.apikey, .secretkey = cr.secretkey,
                               .alg = alg >= 0 ? alg : recorded >= 0 ? recorded : CLOUD_ALG_SHA256,
                               .ca_file = o->ca_file, .insecure = o->insecure };
  rc->cloud = v2k_cloud_open (&co, err);
  int r = rc->cloud ? 0 : -1;
  if (r == 0 && alg < 0 && recorded < 0)
    r = v2k_cloud_probe (rc->cloud, CLOUD_ALG_SHA256, err);
  if (r == 0) {
    v2k_set_str (&m->cloud.endpoint, cr.endpoint);
    v2k_set_str (&m->cloud.algorithm, v2k_cloud_alg_names[v2k_cloud_alg (rc->cloud)]);
  }
  v2k_cloud_creds_free (&cr);
  if (r == -1 || record_init (m) == -1)
    return -1;
  if (o->insecure)
    ev (rc, EV_WARN, "tls.insecure", json_pack ("{s:s}", "url", m->cloud.endpoint));
  json_t *zone = NULL, *offer = NULL, *pool = NULL, *host = NULL;
  char *name = NULL;
  r = -1;
  if (preflight_apis (rc, err) == -1 ||
      require_one (rc, "listZones", "zone", o->zone, "--cloud-zone", &zone, err) == -1 ||
      require_one (rc, "listServiceOfferings", "serviceoffering", o->service_offering,
                   "--cloud-service-offering", &offer, err) == -1 ||
      require_one (rc, "listStoragePools", "storagepool", o->storage, "--cloud-storage", &pool, err) == -1)
    goto out;
  const char *state = jstr (pool, "state"), *scope = jstr (pool, "scope");
  if (!state || strcasecmp (state, "Up") != 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--cloud-storage: pool %s is %s, not Up", jstr (pool, "name"),
                   state ? state : "in an unknown state");
    goto out;
  }
  if (scope && strcasecmp (scope, "HOST") == 0 && !o->host) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--cloud-storage: pool %s is host-local, so --cloud-host is needed",
                   jstr (pool, "name"));
    goto out;
  }
  if (o->host && require_one (rc, "listHosts", "host", o->host, "--cloud-host", &host, err) == -1)
    goto out;
  if (o->disk_offering) {
    json_t *d;
    if (require_one (rc, "listDiskOfferings", "diskoffering", o->disk_offering, "--cloud-disk-offering",
                     &d, err) == -1)
      goto out;
    json_decref (d);
  }
  if (preflight_nics (rc, o, err) == -1)
    goto out;
  name = sanitize_name (o->name ? o->name : m->source.vm.name);
  if (!m->cloud.vm_name)
    v2k_set_str (&m->cloud.vm_name, name);
  {
    struct v2k_cloud_param p[] = { P ("name", m->cloud.vm_name), P ("listall", "true") };
    json_t *other;
    if (lookup_one (rc, "listVirtualMachines", "virtualmachine", p, 2, &other, err) == -1)
      goto out;
    bool ours = other && m->cloud.vm_id && jstr (other, "id") && strcmp (jstr (other, "id"), m->cloud.vm_id) == 0;
    json_decref (other);
    if (other && !ours) {
      v2k_error_set (err, V2K_EXIT_USAGE, "the cloud already has a VM named '%s': choose another with "
                     "--cloud-name", m->cloud.vm_name);
      goto out;
    }
  }
  if (preflight_disks (rc, pool, err) == -1)
    goto out;
  ev (rc, EV_INFO, "cloud.preflight",
      json_pack ("{s:s, s:s, s:s, s:s, s:i, s:i}", "endpoint", m->cloud.endpoint, "flavour",
                 m->cloud.flavour, "algorithm", m->cloud.algorithm, "name", m->cloud.vm_name,
                 "disks", (int) m->n_disks, "nics", (int) m->n_nics));
  r = save (rc, err);
 out:
  free (name);
  json_decref (zone);
  json_decref (offer);
  json_decref (pool);
  json_decref (host);
  return r;
}

/* ---- apply ---- */

static void
owner_param (const struct v2k_register_opts *o, struct v2k_cloud_param *p, size_t *n)
{
  if (o->project)
    p[(*n)++] = P ("projectid", o->project);
  else if (o->account) {
    p[(*n)++] = P ("account", o->account);
    p[(*n)++] = P ("domainid", o->domain ? o->domain : "");
  }
}

static int
disk_offering (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_cloud_record *c = &rc->m->cloud;
  if (o->disk_offering) {
    v2k_set_str (&c->disk_offering_id, o->disk_offering);
    return 0;
  }
  if (c->disk_offering_id)
    return 0;
  json_t *pool;
  struct v2k_cloud_param pp[] = { P ("id", o->storage), P ("listall", "true") };
  if (lookup_one (rc, "listStoragePools", "storagepool", pp, 2, &pool, err) == -1)
    return -1;
  bool local = pool && jstr (pool, "scope") && strcasecmp (jstr (pool, "scope"), "HOST") == 0;
  json_decref (pool);
  const char *name = local ? "ablestack-v2k writeback local" : "ablestack-v2k writeback";
  struct v2k_cloud_param lp[] = { P ("name", name), P ("listall", "true") };
  json_t *d;
  if (lookup_one (rc, "listDiskOfferings", "diskoffering", lp, 2, &d, err) == -1)
    return -1;
  if (d) {
    /* The server reports the cache mode as cacheMode; accept either spelling. */
    const char *cm = jstr (d, "cacheMode") ? jstr (d, "cacheMode") : jstr (d, "cachemode");
    bool fits = json_is_true (json_object_get (d, "iscustomized")) && cm && strcasecmp (cm, "writeback") == 0;
    if (!fits) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud has a disk offering named '%s' that is not a "
                     "customised writeback offering: give --cloud-disk-offering", name);
      json_decref (d);
      return -1;
    }
    v2k_set_str (&c->disk_offering_id, jstr (d, "id"));
    json_decref (d);
    return save (rc, err);
  }
  struct v2k_cloud_param cp[] = {
    P ("name", name), P ("displaytext", "ablestack-v2k migrated disks (writeback)"),
    P ("customized", "true"), P ("provisioningtype", "thin"), P ("storagetype", local ? "local" : "shared"),
    P ("cachemode", "writeback"), P ("displayoffering", "true"),
  };
  json_t *r;
  if (v2k_cloud_call (rc->cloud, "createDiskOffering", cp, 7, true, &r, err) == -1)
    return -1;
  v2k_set_str (&c->disk_offering_id, jstr (json_object_get (r, "diskoffering"), "id"));
  json_decref (r);
  ev (rc, EV_INFO, "cloud.disk_offering_created", json_pack ("{s:s, s:s?}", "name", name, "id",
                                                               c->disk_offering_id));
  if (save (rc, err) == -1)
    return -1;
  v2k_crashpoint ("cloud:createDiskOffering");
  return 0;
}

static int
import_volume (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, size_t i,
               struct v2k_error *err)
{
  struct v2k_cloud_record *c = &rc->m->cloud;
  struct v2k_cloud_volume *v = &c->volumes[i];
  if (v->volume_id)
    return 0;
  char name[128];
  snprintf (name, sizeof name, "%s-disk%zu", c->vm_name, i);
  if (!v->import_job) {
    /* A crash after the server took the import but before its job id was
     * saved: the volume is there already, found by its name. */
    struct v2k_cloud_param q[] = { P ("storageid", o->storage), P ("name", name), P ("listall", "true") };
    json_t *found;
    if (lookup_one (rc, "listVolumes", "volume", q, 3, &found, err) == -1)
      return -1;
    if (found && jstr (found, "path") && v->path && strcmp (jstr (found, "path"), v->path) == 0) {
      v2k_set_str (&v->volume_id, jstr (found, "id"));
      json_decref (found);
      ev (rc, EV_INFO, "cloud.volume_found", json_pack ("{s:s, s:s?}", "disk", v->disk, "volume", v->volume_id));
      return save (rc, err);
    }
    json_decref (found);
  }
  struct v2k_cloud_param p[8];
  size_t n = 0;
  p[n++] = P ("path", v->path);
  p[n++] = P ("storageid", o->storage);
  p[n++] = P ("name", name);
  p[n++] = P ("diskofferingid", c->disk_offering_id);
  owner_param (o, p, &n);
  json_t *res;
  if (submit_and_wait (rc, o, "importVolume", p, n, &v->import_job, &res, err) == -1)
    return -1;
  v2k_set_str (&v->volume_id, jstr (json_object_get (res, "volume"), "id"));
  json_decref (res);
  ev (rc, EV_INFO, "cloud.volume_imported", json_pack ("{s:s, s:s?, s:s}", "disk", v->disk, "volume",
                                                        v->volume_id, "path", v->path));
  return save (rc, err);
}

static int
vm_lookup (struct v2k_register_ctx *rc, json_t **vm, struct v2k_error *err)
{
  *vm = NULL;
  if (!rc->m->cloud.vm_id)
    return 0;
  struct v2k_cloud_param p[] = { P ("id", rc->m->cloud.vm_id), P ("listall", "true") };
  return lookup_one (rc, "listVirtualMachines", "virtualmachine", p, 2, vm, err);
}

static int
deploy_mold (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_manifest *m = rc->m;
  struct v2k_cloud_record *c = &m->cloud;
  json_t *vm;
  if (!c->vm_id) {
    uuid_t u;
    char s[37];
    uuid_generate_random (u);
    uuid_unparse_lower (u, s);
    v2k_set_str (&c->vm_id, s);          /* chosen and saved before the deploy */
    if (save (rc, err) == -1)
      return -1;
  }
  if (vm_lookup (rc, &vm, err) == -1)
    return -1;
  if (vm && !c->deploy_job) {
    json_decref (vm);
    return 0;
  }
  json_decref (vm);
  json_t *offer;
  struct v2k_cloud_param op[] = { P ("id", o->service_offering), P ("listall", "true") };
  if (lookup_one (rc, "listServiceOfferings", "serviceoffering", op, 2, &offer, err) == -1)
    return -1;
  char cpus[16], mem[16], speed[16], netk[64][2][48];
  snprintf (cpus, sizeof cpus, "%lld", (long long) (m->source.vm.num_cpus > 0 ? m->source.vm.num_cpus : 1));
  snprintf (mem, sizeof mem, "%lld", (long long) (m->source.vm.memory_mb > 0 ? m->source.vm.memory_mb : 1024));
  snprintf (speed, sizeof speed, "%lld", (long long) (o->cpu_speed > 0 ? o->cpu_speed : 1000));
  struct v2k_cloud_param p[64 + 2 * 32];
  size_t n = 0;
  p[n++] = P ("zoneid", o->zone);
  p[n++] = P ("serviceofferingid", o->service_offering);
  p[n++] = P ("volumeid", c->volumes[0].volume_id);
  p[n++] = P ("name", c->vm_name);
  p[n++] = P ("displayname", m->source.vm.name);
  p[n++] = P ("hypervisor", "KVM");
  p[n++] = P ("startvm", "false");        /* the server's default is true */
  p[n++] = P ("customid", c->vm_id);
  p[n++] = P ("hostid", o->host ? o->host : "");
  for (size_t k = 0; k < m->n_nics && k < 32; k++) {
    snprintf (netk[k][0], sizeof netk[k][0], "iptonetworklist[%zu].networkid", k);
    snprintf (netk[k][1], sizeof netk[k][1], "iptonetworklist[%zu].mac", k);
    p[n++] = P (netk[k][0], mapped_network (o, m->nics[k].network));
    p[n++] = P (netk[k][1], m->nics[k].mac);
  }
  if (m->source.vm.firmware == FIRMWARE_EFI) {
    p[n++] = P ("boottype", "UEFI");
    p[n++] = P ("bootmode", m->source.vm.secure_boot ? "SECURE" : "LEGACY");
  }
  if (m->source.vm.vtpm)
    p[n++] = P ("tpmversion", "V2_0");
  /* Sizing only where the offering leaves it open. */
  if (offer && !json_object_get (offer, "cpunumber"))
    p[n++] = P ("details[0].cpuNumber", cpus);
  if (offer && !json_object_get (offer, "cpuspeed"))
    p[n++] = P ("details[0].cpuSpeed", speed);
  if (offer && !json_object_get (offer, "memory"))
    p[n++] = P ("details[0].memory", mem);
  const char *ctrl = rc->virtio ? "virtio" : "sata";
  p[n++] = P ("details[0].rootDiskController", ctrl);
  p[n++] = P ("details[0].dataDiskController", ctrl);
  owner_param (o, p, &n);
  json_t *res;
  int r = submit_and_wait (rc, o, "deployVirtualMachineForVolume", p, n, &c->deploy_job, &res, err);
  json_decref (offer);
  if (r == -1)
    return -1;
  json_decref (res);
  ev (rc, EV_INFO, "cloud.vm_deployed", json_pack ("{s:s, s:s}", "vm", c->vm_id, "name", c->vm_name));
  step (rc, "deployed");
  return save (rc, err);
}

static int
verify_nics (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, bool keep_first_mac,
             struct v2k_error *err)
{
  struct v2k_manifest *m = rc->m;
  json_t *vm;
  if (vm_lookup (rc, &vm, err) == -1)
    return -1;
  if (!vm) {
    v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud does not list VM %s after its deploy", m->cloud.vm_id);
    return -1;
  }
  json_t *nics = json_object_get (vm, "nic");
  int r = 0;
  if (json_array_size (nics) != m->n_nics) {
    v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud VM has %zu NIC(s), the source has %zu",
                   json_array_size (nics), m->n_nics);
    r = -1;
  }
  for (size_t k = 0; r == 0 && k < m->n_nics; k++) {
    const char *net = mapped_network (o, m->nics[k].network);
    json_t *found = NULL, *n;
    size_t i;
    json_array_foreach (nics, i, n)
      if (jstr (n, "networkid") && strcmp (jstr (n, "networkid"), net) == 0)
        found = n;
    if (!found) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud VM has no NIC on network %s", net);
      r = -1;
    }
    else if ((k > 0 || keep_first_mac) && strcasecmp (jstr (found, "macaddress") ? jstr (found, "macaddress") : "",
                                                      m->nics[k].mac) != 0) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud gave NIC %zu MAC %s instead of the source's %s "
                     "(a MAC conflict in the cloud?)", k, jstr (found, "macaddress"), m->nics[k].mac);
      r = -1;
    }
    else if (k == 0 && !json_is_true (json_object_get (found, "isdefault"))) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "the NIC on network %s is not the default NIC", net);
      r = -1;
    }
  }
  json_decref (vm);
  if (r == 0) {
    ev (rc, EV_INFO, "cloud.nics_verified", json_pack ("{s:i}", "nics", (int) m->n_nics));
    step (rc, "nics");
  }
  return r == 0 ? save (rc, err) : -1;
}

static int
volume_get (struct v2k_register_ctx *rc, const char *id, json_t **v, struct v2k_error *err)
{
  struct v2k_cloud_param p[] = { P ("id", id), P ("listall", "true") };
  if (lookup_one (rc, "listVolumes", "volume", p, 2, v, err) == -1)
    return -1;
  if (!*v) {
    v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud does not list volume %s", id);
    return -1;
  }
  return 0;
}

static int
fix_root (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_cloud_record *c = &rc->m->cloud;
  json_t *v;
  if (volume_get (rc, c->volumes[0].volume_id, &v, err) == -1)
    return -1;
  const char *type = jstr (v, "type");
  CLEANUP_FREE char *path = jstr (v, "path") ? strdup (jstr (v, "path")) : NULL;
  bool is_root = type && strcasecmp (type, "ROOT") == 0;
  json_decref (v);
  if (!is_root || c->root_job) {
    if (!path) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "the root volume %s has no path in the cloud", c->volumes[0].volume_id);
      return -1;
    }
    /* Always with its path: Mold clears the path otherwise. */
    struct v2k_cloud_param p[] = { P ("id", c->volumes[0].volume_id), P ("type", "ROOT"), P ("path", path) };
    json_t *res;
    if (submit_and_wait (rc, o, "updateVolume", p, 3, &c->root_job, &res, err) == -1)
      return -1;
    json_decref (res);
    if (volume_get (rc, c->volumes[0].volume_id, &v, err) == -1)
      return -1;
    bool ok = jstr (v, "type") && strcasecmp (jstr (v, "type"), "ROOT") == 0 && jstr (v, "path") &&
      strcmp (jstr (v, "path"), path) == 0;
    json_decref (v);
    if (!ok) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "updateVolume did not make volume %s ROOT with path %s",
                     c->volumes[0].volume_id, path);
      return -1;
    }
  }
  step (rc, "root");
  return save (rc, err);
}

/* Device ids for data disks: 1, 2, 4, 5, … (3 is the CD-ROM's). */
static int64_t
data_device_id (size_t i)
{
  return (int64_t) i < 3 ? (int64_t) i : (int64_t) i + 1;
}

static int
attach_volumes (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_cloud_record *c = &rc->m->cloud;
  for (size_t i = 1; i < c->n_volumes; i++) {
    struct v2k_cloud_volume *v = &c->volumes[i];
    if (v->attached)
      continue;
    if (import_volume (rc, o, i, err) == -1)
      return -1;
    json_t *cur;
    if (volume_get (rc, v->volume_id, &cur, err) == -1)
      return -1;
    bool there = jstr (cur, "virtualmachineid") && strcmp (jstr (cur, "virtualmachineid"), c->vm_id) == 0;
    json_decref (cur);
    if (!there) {
      char dev[16];
      snprintf (dev, sizeof dev, "%lld", (long long) data_device_id (i));
      struct v2k_cloud_param p[] = { P ("id", v->volume_id), P ("virtualmachineid", c->vm_id), P ("deviceid", dev) };
      json_t *res;
      if (submit_and_wait (rc, o, "attachVolume", p, 3, &v->attach_job, &res, err) == -1)
        return -1;
      json_decref (res);
    }
    v->attached = true;
    v->device_id = data_device_id (i);
    ev (rc, EV_INFO, "cloud.volume_attached", json_pack ("{s:s, s:s, s:I}", "disk", v->disk, "volume",
                                                          v->volume_id, "device_id", (json_int_t) v->device_id));
    if (save (rc, err) == -1)
      return -1;
  }
  step (rc, "attached");
  return save (rc, err);
}

static int
verify_volumes (struct v2k_register_ctx *rc, struct v2k_error *err)
{
  struct v2k_cloud_record *c = &rc->m->cloud;
  struct v2k_cloud_param p[] = { P ("virtualmachineid", c->vm_id), P ("listall", "true") };
  json_t *arr;
  if (v2k_cloud_list (rc->cloud, "listVolumes", "volume", p, 2, &arr, err) == -1)
    return -1;
  int r = 0;
  if (json_array_size (arr) != c->n_volumes) {
    v2k_error_set (err, V2K_EXIT_CLOUD, "the cloud VM has %zu volume(s), expected %zu", json_array_size (arr),
                   c->n_volumes);
    r = -1;
  }
  for (size_t i = 0; r == 0 && i < c->n_volumes; i++) {
    json_t *found = NULL, *v;
    size_t k;
    json_array_foreach (arr, k, v)
      if (jstr (v, "id") && strcmp (jstr (v, "id"), c->volumes[i].volume_id) == 0)
        found = v;
    int64_t want = i == 0 ? 0 : data_device_id (i);
    if (!found || json_integer_value (json_object_get (found, "deviceid")) != want ||
        !jstr (found, "path") || (i == 0 && strcasecmp (jstr (found, "type") ? jstr (found, "type") : "", "ROOT") != 0)) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "volume %s of disk %s is not attached as planned (device %lld%s)",
                     c->volumes[i].volume_id, c->volumes[i].disk, (long long) want, i == 0 ? ", ROOT" : "");
      r = -1;
    }
  }
  json_decref (arr);
  if (r == 0) {
    step (rc, "verified");
    r = save (rc, err);
  }
  return r;
}

static int
start_vm (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_cloud_record *c = &rc->m->cloud;
  if (c->started)
    return 0;
  struct v2k_cloud_param p[] = { P ("id", c->vm_id), P ("hostid", o->host ? o->host : "") };
  json_t *res;
  if (submit_and_wait (rc, o, "startVirtualMachine", p, 2, &c->start_job, &res, err) == -1)
    return -1;
  json_decref (res);
  c->started = true;
  ev (rc, EV_INFO, "cloud.vm_started", json_pack ("{s:s}", "vm", c->vm_id));
  step (rc, "started");
  return save (rc, err);
}

/* ---- upstream CloudStack: importVm for the root, then volumes and NICs ---- */

static int
deploy_upstream (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_manifest *m = rc->m;
  struct v2k_cloud_record *c = &m->cloud;
  if (c->vm_id)
    return 0;
  json_t *pool;
  struct v2k_cloud_param pp[] = { P ("id", o->storage), P ("listall", "true") };
  if (lookup_one (rc, "listStoragePools", "storagepool", pp, 2, &pool, err) == -1)
    return -1;
  bool local = pool && jstr (pool, "scope") && strcasecmp (jstr (pool, "scope"), "HOST") == 0;
  CLEANUP_FREE char *cluster = pool && jstr (pool, "clusterid") ? strdup (jstr (pool, "clusterid")) : NULL;
  json_decref (pool);
  struct v2k_cloud_param p[20];
  size_t n = 0;
  p[n++] = P ("zoneid", o->zone);
  p[n++] = P ("clusterid", cluster ? cluster : "");
  p[n++] = P ("hypervisor", "KVM");
  p[n++] = P ("importsource", local ? "local" : "shared");
  p[n++] = P ("storageid", o->storage);
  p[n++] = P ("hostid", o->host ? o->host : "");
  p[n++] = P ("diskpath", c->volumes[0].path);
  p[n++] = P ("name", c->vm_name);
  p[n++] = P ("displayname", m->source.vm.name);
  p[n++] = P ("serviceofferingid", o->service_offering);
  p[n++] = P ("networkid", mapped_network (o, m->nics[0].network));
  owner_param (o, p, &n);
  json_t *res;
  if (submit_and_wait (rc, o, "importVm", p, n, &c->deploy_job, &res, err) == -1)
    return -1;
  v2k_set_str (&c->vm_id, jstr (json_object_get (res, "virtualmachine"), "id"));
  json_decref (res);
  if (!c->vm_id) {
    v2k_error_set (err, V2K_EXIT_CLOUD, "importVm returned no virtual machine");
    return -1;
  }
  /* The root volume importVm made. */
  struct v2k_cloud_param q[] = { P ("virtualmachineid", c->vm_id), P ("listall", "true") };
  json_t *root;
  if (lookup_one (rc, "listVolumes", "volume", q, 2, &root, err) == -1)
    return -1;
  v2k_set_str (&c->volumes[0].volume_id, jstr (root, "id"));
  json_decref (root);
  ev (rc, EV_INFO, "cloud.vm_imported", json_pack ("{s:s, s:s}", "vm", c->vm_id, "name", c->vm_name));
  step (rc, "deployed");
  return save (rc, err);
}

static int
add_nics_upstream (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_manifest *m = rc->m;
  struct v2k_cloud_record *c = &m->cloud;
  for (size_t k = 1; k < m->n_nics; k++) {
    struct v2k_cloud_nic *cn = &c->nics[k - 1];
    if (cn->added)
      continue;
    v2k_set_str (&cn->mac, m->nics[k].mac);
    v2k_set_str (&cn->network_id, mapped_network (o, m->nics[k].network));
    struct v2k_cloud_param p[] = { P ("virtualmachineid", c->vm_id), P ("networkid", cn->network_id),
                                   P ("macaddress", cn->mac) };
    json_t *res;
    if (submit_and_wait (rc, o, "addNicToVirtualMachine", p, 3, &cn->job, &res, err) == -1)
      return -1;
    json_decref (res);
    cn->added = true;
    if (save (rc, err) == -1)
      return -1;
  }
  return 0;
}

/* ---- rollback ---- */

static int
rollback (struct v2k_register_ctx *rc, const struct v2k_register_opts *o, struct v2k_error *err)
{
  struct v2k_cloud_record *c = &rc->m->cloud;
  json_t *res;
  for (size_t i = c->n_volumes; i-- > 0; ) {
    struct v2k_cloud_volume *v = &c->volumes[i];
    if (!v->volume_id)
      continue;
    json_t *cur;
    struct v2k_cloud_param q[] = { P ("id", v->volume_id), P ("listall", "true") };
    if (lookup_one (rc, "listVolumes", "volume", q, 2, &cur, err) == -1)
      return -1;
    if (!cur)
      continue;
    bool attached = jstr (cur, "virtualmachineid") != NULL;
    json_decref (cur);
    char *job = NULL;
    struct v2k_cloud_param p[] = { P ("id", v->volume_id) };
    if (attached) {
      if (submit_and_wait (rc, o, "detachVolume", p, 1, &job, &res, err) == -1)
        return -1;
      json_decref (res);
      free (job);
      job = NULL;
    }
    if (submit_and_wait (rc, o, "unmanageVolume", p, 1, &job, &res, err) == -1) {
      free (job);
      return -1;
    }
    json_decref (res);
    free (job);
  }
  json_t *vm;
  if (vm_lookup (rc, &vm, err) == -1)
    return -1;
  if (vm) {
    json_decref (vm);
    char *job = NULL;
    struct v2k_cloud_param p[] = { P ("id", c->vm_id), P ("expunge", "true") };
    if (submit_and_wait (rc, o, "destroyVirtualMachine", p, 2, &job, &res, err) == -1) {
      free (job);
      return -1;
    }
    json_decref (res);
    free (job);
  }
  cloud_record_reset (c);
  c->rolled_back = true;
  step (rc, "rolled_back");
  return save (rc, err);
}

int
v2k_register_apply (struct v2k_register_ctx *rc, const struct v2k_register_opts *o,
                    struct v2k_error *err)
{
  struct v2k_cloud_record *c = &rc->m->cloud;
  bool mold = c->flavour && strcmp (c->flavour, "mold") == 0;
  int r;
  c->rolled_back = false;
  if (mold) {
    r = disk_offering (rc, o, err) == -1 || import_volume (rc, o, 0, err) == -1;
    for (size_t i = 1; r == 0 && i < c->n_volumes; i++)
      r = import_volume (rc, o, i, err);
    if (r == 0) {
      step (rc, "imported");
      r = deploy_mold (rc, o, err) == -1 || verify_nics (rc, o, true, err) == -1 ||
        fix_root (rc, o, err) == -1 || attach_volumes (rc, o, err) == -1 || verify_volumes (rc, err) == -1;
    }
  }
  else {
    r = disk_offering (rc, o, err) == -1 || deploy_upstream (rc, o, err) == -1 ||
      attach_volumes (rc, o, err) == -1 || add_nics_upstream (rc, o, err) == -1 ||
      verify_nics (rc, o, false, err) == -1 || verify_volumes (rc, err) == -1;
    if (r == 0 && rc->m->n_nics > 0)
      ev (rc, EV_WARN, "cloud.first_nic_mac",
          json_pack ("{s:s}", "note", "upstream CloudStack before 4.22.1 gives the first NIC a new MAC"));
  }
  if (r == 0 && o->start)
    r = start_vm (rc, o, err) == -1;
  if (r == 0) {
    ev (rc, EV_INFO, "cloud.registered",
        json_pack ("{s:s, s:s, s:s, s:b}", "vm", c->vm_id, "name", c->vm_name, "flavour", c->flavour,
                   "started", c->started));
    return 0;
  }
  /* No rollback when the outcome is unknown (a lost reply, a job still
   * running) or after a start: a re-run finds out and continues. */
  if (v2k_cloud_transport_failed (rc->cloud) || strstr (err->message, "did not finish within")) {
    v2k_error_prefix (err, "registration stopped with its state recorded; run the same command "
                      "again to resume");
    return -1;
  }
  if (err->code == V2K_EXIT_INTERRUPTED || c->started || o->on_failure == CLOUD_ON_FAILURE_KEEP)
    return -1;
  /* Before a start, undo what was created; the disk images stay. */
  struct v2k_error saved = *err, rerr = { 0 };
  ev (rc, EV_WARN, "cloud.rollback", json_pack ("{s:s}", "reason", saved.message));
  if (rollback (rc, o, &rerr) == -1) {
    v2k_error_set (err, V2K_EXIT_CLOUD, "%s; the rollback failed too: %s (the cloud objects are "
                   "recorded in the manifest)", saved.message, rerr.message);
    return -1;
  }
  *err = saved;
  v2k_error_prefix (err, "registration rolled back (the disk images are kept)");
  return -1;
}

void
v2k_register_close (struct v2k_register_ctx *rc)
{
  v2k_cloud_close (rc->cloud);
  rc->cloud = NULL;
}
