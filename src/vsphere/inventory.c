#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "propcoll.h"
#include "../util/cleanup.h"
#include "../util/strbuf.h"

static int
push_str (char ***arr, size_t *n, char *s)
{
  char **p = realloc (*arr, (*n + 1) * sizeof *p);
  if (!p) {
    free (s);
    return -1;
  }
  *arr = p;
  p[(*n)++] = s;
  return 0;
}

void
v2k_inventory_report_free (struct v2k_inventory_report *r)
{
  for (size_t i = 0; i < r->nrefusals; i++)
    free (r->refusals[i]);
  free (r->refusals);
  for (size_t i = 0; i < r->nuser_snapshots; i++)
    free (r->user_snapshots[i]);
  free (r->user_snapshots);
  memset (r, 0, sizeof *r);
}

int
v2k_datastore_path_parse (const char *s, char **datastore, char **path)
{
  *datastore = *path = NULL;
  if (!s || s[0] != '[')
    return -1;
  const char *close = strchr (s + 1, ']');
  if (!close || close == s + 1)
    return -1;
  const char *p = close + 1;
  while (*p == ' ')
    p++;
  *datastore = strndup (s + 1, (size_t) (close - s - 1));
  *path = strdup (p);
  if (!*datastore || !*path) {
    free (*datastore);
    free (*path);
    *datastore = *path = NULL;
    return -1;
  }
  return 0;
}

/* Controllers, keyed by device key. */
struct controller {
  int64_t key;
  int kind;               /* enum v2k_controller_kind */
  const char *model;
  int64_t bus;
};

static const struct { const char *type; int kind; const char *model; } controller_types[] = {
  { "ParaVirtualSCSIController", CTRL_SCSI, "pvscsi" },
  { "VirtualLsiLogicController", CTRL_SCSI, "lsilogic" },
  { "VirtualLsiLogicSASController", CTRL_SCSI, "lsisas" },
  { "VirtualBusLogicController", CTRL_SCSI, "buslogic" },
  { "VirtualAHCIController", CTRL_SATA, "ahci" },
  { "VirtualSATAController", CTRL_SATA, "sata" },
  { "VirtualIDEController", CTRL_IDE, "ide" },
  { "VirtualNVMEController", CTRL_NVME, "nvme" },
};

static const struct { const char *type; const char *adapter; } nic_types[] = {
  { "VirtualVmxnet3", "vmxnet3" }, { "VirtualVmxnet3Vrdma", "vmxnet3" },
  { "VirtualE1000e", "e1000e" }, { "VirtualE1000", "e1000" },
  { "VirtualVmxnet2", "vmxnet2" }, { "VirtualVmxnet", "vmxnet" },
  { "VirtualPCNet32", "pcnet32" }, { "VirtualSriovEthernetCard", "sriov" },
};

struct disk_sort {
  struct v2k_disk disk;
  int64_t boot_index;     /* position in the boot order, or a large number */
  int64_t number;         /* N of "Hard disk N", or a large number */
};

static int
disk_cmp (const void *a, const void *b)
{
  const struct disk_sort *x = a, *y = b;
#define CMP(f) if (x->f != y->f) return x->f < y->f ? -1 : 1
  CMP (boot_index);
  CMP (number);
  CMP (disk.controller.kind);
  CMP (disk.controller.bus);
  CMP (disk.controller.unit);
#undef CMP
  return 0;
}

static int64_t
hard_disk_number (const char *label)
{
  long n;
  if (label && sscanf (label, "Hard disk %ld", &n) == 1)
    return n;
  return INT64_MAX;
}

static char *
strdup_or_null (const char *s)
{
  return s ? strdup (s) : NULL;
}

static int
refuse (struct v2k_inventory_report *r, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
static int
refuse (struct v2k_inventory_report *r, const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start (ap, fmt);
  int n = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (n < 0)
    return -1;
  return push_str (&r->refusals, &r->nrefusals, s);
}

int
v2k_inventory_parse_devices (xmlNode *devices, xmlNode *boot_options, struct v2k_manifest *m,
                             struct v2k_inventory_report *report, struct v2k_error *err)
{
  struct controller ctrls[64];
  size_t nctrl = 0;
  size_t ndisk = 0, nnic = 0;
  for (xmlNode *d = v2k_xml_child (devices, NULL); d; d = v2k_xml_next (d)) {
    CLEANUP_FREE char *type = v2k_xml_type (d);
    if (!type)
      continue;
    for (size_t i = 0; i < sizeof controller_types / sizeof controller_types[0]; i++) {
      if (strcmp (type, controller_types[i].type) == 0 && nctrl < 64) {
        struct controller *c = &ctrls[nctrl++];
        c->kind = controller_types[i].kind;
        c->model = controller_types[i].model;
        v2k_xml_child_int64 (d, "key", &c->key);
        c->bus = 0;
        v2k_xml_child_int64 (d, "busNumber", &c->bus);
      }
    }
    ndisk += strcmp (type, "VirtualDisk") == 0;
    for (size_t i = 0; i < sizeof nic_types / sizeof nic_types[0]; i++)
      nnic += strcmp (type, nic_types[i].type) == 0;
    if (strcmp (type, "VirtualTPM") == 0)
      m->source.vm.vtpm = true;
  }

  /* Boot order: the disks listed first boot first. */
  int64_t boot_keys[64];
  size_t nboot = 0;
  for (xmlNode *b = v2k_xml_child (boot_options, "bootOrder"); b && nboot < 64; b = v2k_xml_next (b))
    if (v2k_xml_type_is (b, "VirtualMachineBootOptionsBootableDiskDevice") &&
        v2k_xml_child_int64 (b, "deviceKey", &boot_keys[nboot]) == 0)
      nboot++;

  struct disk_sort *disks = calloc (ndisk ? ndisk : 1, sizeof *disks);
  m->nics = calloc (nnic ? nnic : 1, sizeof *m->nics);
  if (!disks || !m->nics) {
    free (disks);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  size_t di = 0;
  for (xmlNode *d = v2k_xml_child (devices, NULL); d; d = v2k_xml_next (d)) {
    CLEANUP_FREE char *type = v2k_xml_type (d);
    if (!type)
      continue;
    xmlNode *backing = v2k_xml_child (d, "backing");
    if (strcmp (type, "VirtualDisk") == 0) {
      struct disk_sort *ds = &disks[di++];
      struct v2k_disk *k = &ds->disk;
      int64_t ckey = -1, unit = 0, kib = 0;
      v2k_xml_child_int64 (d, "key", &k->key);
      v2k_xml_child_int64 (d, "controllerKey", &ckey);
      v2k_xml_child_int64 (d, "unitNumber", &unit);
      if (v2k_xml_child_int64 (d, "capacityInBytes", &k->capacity) == -1 &&
          v2k_xml_child_int64 (d, "capacityInKB", &kib) == 0)
        k->capacity = kib * 1024;
      k->label = v2k_xml_text (v2k_xml_path (d, "deviceInfo", "label", NULL));
      k->file_name = v2k_xml_child_text (backing, "fileName");
      k->disk_mode = v2k_xml_child_text (backing, "diskMode");
      k->sharing = v2k_xml_child_text (backing, "sharing");
      k->thin = v2k_xml_child_bool (backing, "thinProvisioned", false);
      char *ds_name, *ds_path;
      if (k->file_name && v2k_datastore_path_parse (k->file_name, &ds_name, &ds_path) == 0) {
        k->datastore = ds_name;
        free (ds_path);
      }
      const struct controller *c = NULL;
      for (size_t i = 0; i < nctrl; i++)
        if (ctrls[i].key == ckey)
          c = &ctrls[i];
      k->controller.key = ckey < 0 ? 0 : ckey;
      k->controller.unit = unit;
      if (c) {
        k->controller.kind = c->kind;
        k->controller.model = strdup (c->model);
        k->controller.bus = c->bus;
      }
      if (asprintf (&k->id, "%s%lld:%lld", c ? v2k_controller_names[c->kind] : "unknown",
                    (long long) k->controller.bus, (long long) unit) < 0)
        k->id = NULL;
      ds->boot_index = INT64_MAX;
      for (size_t i = 0; i < nboot; i++)
        if (boot_keys[i] == k->key)
          ds->boot_index = (int64_t) i;
      ds->number = hard_disk_number (k->label);

      const char *what = k->label ? k->label : "disk";
      CLEANUP_FREE char *btype = v2k_xml_type (backing);
      CLEANUP_FREE char *compat = v2k_xml_child_text (backing, "compatibilityMode");
      if (!c)
        refuse (report, "%s (key %lld): on a controller this tool does not know", what,
                (long long) k->key);
      if (k->disk_mode && strncmp (k->disk_mode, "independent", 11) == 0)
        refuse (report, "%s (%s): disk mode %s is not snapshotted, so it cannot be tracked; "
                "change it to dependent (persistent) first", what, k->id, k->disk_mode);
      if (btype && strcmp (btype, "VirtualDiskRawDiskMappingVer1BackingInfo") == 0 &&
          compat && strcmp (compat, "physicalMode") == 0)
        refuse (report, "%s (%s): a physical-mode RDM cannot be snapshotted or tracked; "
                "migrate its LUN separately", what, k->id);
      if (k->sharing && strcmp (k->sharing, "sharingMultiWriter") == 0)
        refuse (report, "%s (%s): multi-writer sharing forbids snapshots", what, k->id);
      if (!k->file_name)
        refuse (report, "%s (%s): no backing file", what, k->id);
      if (k->capacity <= 0)
        refuse (report, "%s (%s): no capacity reported", what, k->id);
      continue;
    }
    for (size_t i = 0; i < sizeof nic_types / sizeof nic_types[0]; i++) {
      if (strcmp (type, nic_types[i].type) != 0)
        continue;
      struct v2k_nic *n = &m->nics[m->n_nics++];
      v2k_xml_child_int64 (d, "key", &n->key);
      n->label = v2k_xml_text (v2k_xml_path (d, "deviceInfo", "label", NULL));
      n->mac = v2k_xml_child_text (d, "macAddress");
      if (!n->mac)
        n->mac = strdup ("");
      n->adapter = strdup (nic_types[i].adapter);
      n->network = v2k_xml_child_text (backing, "deviceName");
      if (!n->network)  /* a distributed port group: resolved to its name later */
        n->network = v2k_xml_text (v2k_xml_path (backing, "port", "portgroupKey", NULL));
      n->connected = v2k_xml_child_bool (v2k_xml_child (d, "connectable"), "connected", false);
    }
  }
  qsort (disks, ndisk, sizeof *disks, disk_cmp);
  m->disks = calloc (ndisk ? ndisk : 1, sizeof *m->disks);
  if (!m->disks) {
    free (disks);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < ndisk; i++)
    m->disks[i] = disks[i].disk;
  m->n_disks = ndisk;
  free (disks);
  return 0;
}

static const char *const vm_paths[] = {
  "name", "parent", "config.uuid", "config.instanceUuid", "config.guestId",
  "config.guestFullName", "config.hardware.numCPU", "config.hardware.numCoresPerSocket",
  "config.hardware.memoryMB", "config.hardware.device", "config.firmware", "config.bootOptions",
  "config.changeTrackingEnabled", "runtime.powerState", "runtime.host", "guest.toolsStatus",
  "snapshot", NULL,
};

static int64_t
prop_int (const struct v2k_pc_object *o, const char *name)
{
  CLEANUP_FREE char *s = v2k_pc_prop_text (o, name);
  return s ? strtoll (s, NULL, 10) : 0;
}

static void
collect_snapshot_names (xmlNode *list, struct v2k_inventory_report *r)
{
  for (xmlNode *t = list; t; t = v2k_xml_next (t)) {
    char *name = v2k_xml_child_text (t, "name");
    if (name)
      push_str (&r->user_snapshots, &r->nuser_snapshots, name);
    collect_snapshot_names (v2k_xml_child (t, "childSnapshotList"), r);
  }
}

/* name/parent of every Folder and Datacenter, to build inventory paths. */
struct entity { char *moref, *name, *parent; };
struct entities { struct entity *e; size_t n; struct v2k_pc_result res[2]; };

static int
load_entities (struct v2k_soap *s, struct entities *ents, struct v2k_error *err)
{
  static const char *const paths[] = { "name", "parent", NULL };
  const char *types[] = { "Folder", "Datacenter" };
  for (int t = 0; t < 2; t++)
    if (v2k_pc_get_all (s, types[t], paths, &ents->res[t], err) == -1)
      return -1;
  size_t total = ents->res[0].nobjs + ents->res[1].nobjs;
  ents->e = calloc (total ? total : 1, sizeof *ents->e);
  if (!ents->e) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  for (int t = 0; t < 2; t++)
    for (size_t i = 0; i < ents->res[t].nobjs; i++) {
      struct v2k_pc_object *o = &ents->res[t].objs[i];
      struct entity *e = &ents->e[ents->n++];
      e->moref = strdup (o->moref ? o->moref : "");
      e->name = v2k_pc_prop_text (o, "name");
      e->parent = v2k_pc_prop_text (o, "parent");
    }
  return 0;
}

static void
free_entities (struct entities *ents)
{
  for (size_t i = 0; i < ents->n; i++) {
    free (ents->e[i].moref);
    free (ents->e[i].name);
    free (ents->e[i].parent);
  }
  free (ents->e);
  v2k_pc_result_free (&ents->res[0]);
  v2k_pc_result_free (&ents->res[1]);
}

/* "DC/vm/folder/NAME": names up the parent chain, the root folder left out. */
static char *
entity_path (const struct entities *ents, const char *root, const char *parent, const char *name)
{
  const char *parts[64];
  size_t np = 0;
  parts[np++] = name;
  for (const char *p = parent; p && strcmp (p, root) != 0 && np < 64; ) {
    const struct entity *found = NULL;
    for (size_t i = 0; i < ents->n; i++)
      if (strcmp (ents->e[i].moref, p) == 0)
        found = &ents->e[i];
    if (!found)
      break;
    parts[np++] = found->name ? found->name : "?";
    p = found->parent;
  }
  /* Names are escaped as vSphere's inventory paths escape them, so that a
   * '/' in a name cannot pass for a folder. */
  struct strbuf b = { 0 };
  for (size_t i = np; i-- > 0; ) {
    for (const char *c = parts[i]; *c; c++) {
      if (*c == '%')
        sb_add (&b, "%25");
      else if (*c == '/')
        sb_add (&b, "%2f");
      else if (*c == '\\')
        sb_add (&b, "%5c");
      else
        sb_addn (&b, c, 1);
    }
    if (i)
      sb_add (&b, "/");
  }
  return sb_steal (&b);
}

static bool
looks_like_moref (const char *s)
{
  regex_t re;
  if (regcomp (&re, "^vm-[0-9]+$", REG_EXTENDED | REG_NOSUB) != 0)
    return false;
  bool r = regexec (&re, s, 0, NULL, 0) == 0;
  regfree (&re);
  return r;
}

int
v2k_vm_find (struct v2k_soap *s, const char *spec, char **moref, char **path,
             struct v2k_error *err)
{
  const struct v2k_service_content *sc = v2k_soap_content (s);
  static const char *const paths[] = { "name", "parent", NULL };
  struct v2k_pc_result vms = { 0 };
  struct entities ents = { 0 };
  int r = -1;
  *moref = *path = NULL;

  if (strchr (spec, '/')) {
    struct strbuf p = { 0 };
    sb_add (&p, "<inventoryPath>");
    sb_add_xml (&p, spec);
    sb_add (&p, "</inventoryPath>");
    xmlDoc *doc;
    xmlNode *resp;
    int c = v2k_soap_call (s, "FindByInventoryPath", "SearchIndex", sc->search_index, p.s,
                           false, &doc, &resp, err);
    sb_free (&p);
    if (c == -1)
      return -1;
    xmlNode *rv = v2k_xml_child (resp, "returnval");
    xmlChar *type = rv ? xmlGetProp (rv, (const xmlChar *) "type") : NULL;
    bool is_vm = type && strcmp ((const char *) type, "VirtualMachine") == 0;
    xmlFree (type);
    if (!is_vm) {
      xmlFreeDoc (doc);
      v2k_error_set (err, V2K_EXIT_VSPHERE, "no VM at inventory path '%s'", spec);
      return -1;
    }
    *moref = v2k_xml_text (rv);
    xmlFreeDoc (doc);
    *path = strdup (spec);
    return 0;
  }

  if (v2k_pc_get_all (s, "VirtualMachine", paths, &vms, err) == -1 ||
      load_entities (s, &ents, err) == -1)
    goto out;
  bool by_moref = looks_like_moref (spec);
  struct strbuf matches = { 0 };
  size_t nmatch = 0;
  for (size_t i = 0; i < vms.nobjs; i++) {
    struct v2k_pc_object *o = &vms.objs[i];
    CLEANUP_FREE char *name = v2k_pc_prop_text (o, "name");
    if (!o->moref || !name)
      continue;
    if (by_moref ? strcmp (o->moref, spec) != 0 : strcmp (name, spec) != 0)
      continue;
    CLEANUP_FREE char *parent = v2k_pc_prop_text (o, "parent");
    char *p = entity_path (&ents, sc->root_folder, parent, name);
    sb_addf (&matches, "%s%s (%s)", nmatch ? ", " : "", o->moref, p);
    if (nmatch++ == 0) {
      *moref = strdup (o->moref);
      *path = p;
    }
    else
      free (p);
  }
  if (nmatch == 0)
    v2k_error_set (err, V2K_EXIT_VSPHERE, "no VM %s '%s' on %s", by_moref ? "with moref" : "named",
                   spec, v2k_soap_url (s));
  else if (nmatch > 1)
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "%zu VMs are named '%s': %s; pass --vm with a moref or an inventory path",
                   nmatch, spec, matches.s);
  else
    r = 0;
  sb_free (&matches);
  if (r == -1) {
    free (*moref);
    free (*path);
    *moref = *path = NULL;
  }
 out:
  free_entities (&ents);
  v2k_pc_result_free (&vms);
  return r;
}

static int
resolve_portgroups (struct v2k_soap *s, struct v2k_manifest *m, struct v2k_error *err)
{
  static const char *const paths[] = { "name", NULL };
  for (size_t i = 0; i < m->n_nics; i++) {
    struct v2k_nic *n = &m->nics[i];
    if (!n->network || strncmp (n->network, "dvportgroup-", 12) != 0)
      continue;
    struct v2k_pc_result res = { 0 };
    if (v2k_pc_get (s, "DistributedVirtualPortgroup", n->network, paths, &res, err) == -1)
      return -1;
    char *name = res.nobjs ? v2k_pc_prop_text (&res.objs[0], "name") : NULL;
    v2k_pc_result_free (&res);
    if (name) {
      free (n->network);
      n->network = name;
    }
  }
  return 0;
}

int
v2k_inventory_read (struct v2k_soap *s, const char *moref, struct v2k_manifest *m,
                    struct v2k_inventory_report *report, struct v2k_error *err)
{
  const struct v2k_service_content *sc = v2k_soap_content (s);
  struct v2k_pc_result res = { 0 };
  if (v2k_pc_get (s, "VirtualMachine", moref, vm_paths, &res, err) == -1)
    return -1;
  if (res.nobjs != 1) {
    v2k_pc_result_free (&res);
    v2k_error_set (err, V2K_EXIT_VSPHERE, "VM %s: no properties returned", moref);
    return -1;
  }
  const struct v2k_pc_object *o = &res.objs[0];
  struct v2k_vm *vm = &m->source.vm;
  vm->name = v2k_pc_prop_text (o, "name");
  vm->moref = strdup (moref);
  vm->bios_uuid = v2k_pc_prop_text (o, "config.uuid");
  vm->instance_uuid = v2k_pc_prop_text (o, "config.instanceUuid");
  vm->guest_id = v2k_pc_prop_text (o, "config.guestId");
  vm->guest_full_name = v2k_pc_prop_text (o, "config.guestFullName");
  vm->num_cpus = prop_int (o, "config.hardware.numCPU");
  vm->cores_per_socket = prop_int (o, "config.hardware.numCoresPerSocket");
  if (vm->cores_per_socket <= 0)
    vm->cores_per_socket = 1;
  vm->memory_mb = prop_int (o, "config.hardware.memoryMB");
  CLEANUP_FREE char *fw = v2k_pc_prop_text (o, "config.firmware");
  vm->firmware = fw && strcmp (fw, "efi") == 0 ? FIRMWARE_EFI : FIRMWARE_BIOS;
  xmlNode *boot = v2k_pc_prop (o, "config.bootOptions");
  vm->secure_boot = v2k_xml_child_bool (boot, "efiSecureBootEnabled", false);
  vm->power_state = v2k_pc_prop_text (o, "runtime.powerState");
  vm->tools_status = v2k_pc_prop_text (o, "guest.toolsStatus");
  if (!vm->name || !vm->instance_uuid) {
    v2k_pc_result_free (&res);
    v2k_error_set (err, V2K_EXIT_VSPHERE, "VM %s: no name or instance UUID", moref);
    return -1;
  }
  xmlNode *devices = v2k_pc_prop (o, "config.hardware.device");
  if (v2k_inventory_parse_devices (devices, boot, m, report, err) == -1) {
    v2k_pc_result_free (&res);
    return -1;
  }
  xmlNode *snap = v2k_pc_prop (o, "snapshot");
  collect_snapshot_names (v2k_xml_child (snap, "rootSnapshotList"), report);
  CLEANUP_FREE char *host = v2k_pc_prop_text (o, "runtime.host");
  v2k_pc_result_free (&res);

  struct v2k_vcenter *vc = &m->source.vcenter;
  vc->url = strdup (v2k_soap_url (s));
  vc->product = strdup_or_null (sc->about_full_name);
  vc->version = strdup_or_null (sc->about_version);
  vc->api_version = strdup_or_null (sc->about_api_version);
  vc->instance_uuid = strdup_or_null (sc->about_instance_uuid);

  if (host) {
    static const char *const hpaths[] = { "name", "summary.config.sslThumbprint", NULL };
    struct v2k_pc_result hr = { 0 };
    if (v2k_pc_get (s, "HostSystem", host, hpaths, &hr, err) == -1)
      return -1;
    m->source.host.moref = strdup (host);
    if (hr.nobjs) {
      m->source.host.name = v2k_pc_prop_text (&hr.objs[0], "name");
      m->source.host.ssl_thumbprint = v2k_pc_prop_text (&hr.objs[0], "summary.config.sslThumbprint");
    }
    v2k_pc_result_free (&hr);
  }
  return resolve_portgroups (s, m, err);
}
