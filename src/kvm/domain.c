#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "../transfer/rbd.h"
#include "../util/cleanup.h"
#include "../util/strbuf.h"

const char *const v2k_disk_bus_names[] = { "sata", "virtio", "virtio-scsi", NULL };
const char *const v2k_nic_model_names[] = { "e1000e", "virtio", NULL };

static void
attr (struct strbuf *b, const char *name, const char *value)
{
  sb_addf (b, " %s='", name);
  sb_add_xml (b, value);
  sb_add (b, "'");
}

bool
v2k_guest_is_windows (const struct v2k_manifest *m)
{
  const char *g = m->source.vm.guest_id ? m->source.vm.guest_id : "";
  const char *full = m->source.vm.guest_full_name ? m->source.vm.guest_full_name : "";
  return strncmp (g, "win", 3) == 0 || strstr (full, "Windows") != NULL;
}

/* The mapping of one VMware network: "bridge:BR" or "network:NET". */
static const char *
network_target (const struct v2k_domain_opts *o, const char *network)
{
  size_t len = strlen (network ? network : "");
  for (size_t i = 0; i < o->n_net_map; i++)
    if (network && strncmp (o->net_map[i], network, len) == 0 && o->net_map[i][len] == '=')
      return o->net_map[i] + len + 1;
  return o->net_default;
}

static int
check_target (const char *what, const char *t, struct v2k_error *err)
{
  if ((strncmp (t, "bridge:", 7) == 0 && t[7]) || (strncmp (t, "network:", 8) == 0 && t[8]))
    return 0;
  v2k_error_set (err, V2K_EXIT_USAGE, "%s '%s': want bridge:NAME or network:NAME", what, t);
  return -1;
}

static int
check_networks (const struct v2k_manifest *m, const struct v2k_domain_opts *o,
                struct v2k_error *err)
{
  for (size_t i = 0; i < o->n_net_map; i++) {
    const char *eq = strchr (o->net_map[i], '=');
    if (!eq || eq == o->net_map[i]) {
      v2k_error_set (err, V2K_EXIT_USAGE, "--net-map '%s': want VMWARE-NETWORK=bridge:BR or =network:NET",
                     o->net_map[i]);
      return -1;
    }
    if (check_target ("--net-map", eq + 1, err) == -1)
      return -1;
  }
  if (o->net_default && check_target ("--net-default", o->net_default, err) == -1)
    return -1;
  struct strbuf missing = { 0 };
  size_t n = 0;
  for (size_t i = 0; i < m->n_nics; i++)
    if (!network_target (o, m->nics[i].network)) {
      bool dup = false;
      for (size_t j = 0; j < i; j++)
        dup |= !network_target (o, m->nics[j].network) && m->nics[j].network && m->nics[i].network &&
          strcmp (m->nics[j].network, m->nics[i].network) == 0;
      if (!dup)
        sb_addf (&missing, "%s'%s'", n++ ? ", " : "", m->nics[i].network ? m->nics[i].network : "");
    }
  if (n) {
    v2k_error_set (err, V2K_EXIT_USAGE,
                   "these VMware networks need a mapping: %s; pass --net-map NETWORK=bridge:BR "
                   "(or =network:NET) for each, or --net-default", missing.s);
    sb_free (&missing);
    return -1;
  }
  return 0;
}

static void
target_dev (char *out, size_t len, int bus, size_t index)
{
  const char *prefix = bus == DISK_BUS_VIRTIO ? "vd" : "sd";
  if (index < 26)
    snprintf (out, len, "%s%c", prefix, (char) ('a' + index));
  else
    snprintf (out, len, "%s%c%c", prefix, (char) ('a' + index / 26 - 1), (char) ('a' + index % 26));
}

static int
add_disk (struct strbuf *b, const struct v2k_manifest *m, const struct v2k_domain_opts *o,
          size_t i, struct v2k_error *err)
{
  const struct v2k_disk *d = &m->disks[i];
  const char *fmt = m->target.storage == STORAGE_BLOCK ? "raw" : v2k_format_names[m->target.format];
  char dev[16];
  target_dev (dev, sizeof dev, o->disk_bus, i);
  const char *bus = o->disk_bus == DISK_BUS_VIRTIO ? "virtio" : o->disk_bus == DISK_BUS_SATA ? "sata" : "scsi";
  switch (m->target.storage) {
  case STORAGE_FILE: sb_add (b, "    <disk type='file' device='disk'>\n"); break;
  case STORAGE_BLOCK: sb_add (b, "    <disk type='block' device='disk'>\n"); break;
  case STORAGE_RBD: sb_add (b, "    <disk type='network' device='disk'>\n"); break;
  }
  sb_addf (b, "      <driver name='qemu' type='%s' cache='none' io='native' discard='unmap'/>\n",
           m->target.storage == STORAGE_RBD ? "raw" : fmt);
  if (m->target.storage == STORAGE_FILE) {
    sb_add (b, "      <source");
    attr (b, "file", d->target_path);
    sb_add (b, "/>\n");
  }
  else if (m->target.storage == STORAGE_BLOCK) {
    sb_add (b, "      <source");
    attr (b, "dev", d->target_path);
    sb_add (b, "/>\n");
  }
  else {
    char pool[256], image[256], name[600];
    if (v2k_rbd_parse (d->target_path, pool, sizeof pool, image, sizeof image) == -1) {
      v2k_error_set (err, V2K_EXIT_USAGE, "disk %s: '%s' is not rbd:POOL/IMAGE", d->id, d->target_path);
      return -1;
    }
    snprintf (name, sizeof name, "%s/%s", pool, image);
    sb_add (b, "      <source protocol='rbd'");
    attr (b, "name", name);
    sb_add (b, ">\n");
    for (size_t k = 0; k < o->n_rbd_monitors; k++) {
      const char *mon = o->rbd_monitors[k], *colon = strrchr (mon, ':');
      char host[256];
      snprintf (host, sizeof host, "%.*s", colon ? (int) (colon - mon) : (int) strlen (mon), mon);
      sb_add (b, "        <host");
      attr (b, "name", host);
      attr (b, "port", colon ? colon + 1 : "6789");
      sb_add (b, "/>\n");
    }
    sb_add (b, "      </source>\n");
    if (o->rbd_secret) {
      sb_add (b, "      <auth");
      attr (b, "username", o->rbd_user ? o->rbd_user : "admin");
      sb_add (b, ">\n        <secret type='ceph'");
      attr (b, "uuid", o->rbd_secret);
      sb_add (b, "/>\n      </auth>\n");
    }
  }
  sb_addf (b, "      <target dev='%s' bus='%s'/>\n", dev, bus);
  if (i == 0)
    sb_add (b, "      <boot order='1'/>\n");
  sb_add (b, "    </disk>\n");
  return 0;
}

static void
add_nic (struct strbuf *b, const struct v2k_nic *n, const struct v2k_domain_opts *o)
{
  const char *t = network_target (o, n->network);
  bool bridge = strncmp (t, "bridge:", 7) == 0;
  sb_addf (b, "    <interface type='%s'>\n", bridge ? "bridge" : "network");
  sb_add (b, "      <mac");
  attr (b, "address", n->mac);
  sb_addf (b, "/>\n      <source");
  attr (b, bridge ? "bridge" : "network", strchr (t, ':') + 1);
  sb_addf (b, "/>\n      <model type='%s'/>\n    </interface>\n", v2k_nic_model_names[o->nic_model]);
}

char *
v2k_domain_xml (const struct v2k_manifest *m, const struct v2k_domain_opts *o, struct v2k_error *err)
{
  const struct v2k_vm *vm = &m->source.vm;
  if (m->target.storage == STORAGE_RBD && o->n_rbd_monitors == 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "RBD disks need the Ceph monitors for the domain XML");
    return NULL;
  }
  if (check_networks (m, o, err) == -1)
    return NULL;
  int64_t cores = vm->cores_per_socket > 0 ? vm->cores_per_socket : 1;
  int64_t cpus = vm->num_cpus > 0 ? vm->num_cpus : 1;
  if (cpus % cores)
    cores = 1;
  bool windows = v2k_guest_is_windows (m), efi = vm->firmware == FIRMWARE_EFI;
  struct strbuf b = { 0 };
  sb_add (&b, "<domain type='kvm'>\n  <name>");
  sb_add_xml (&b, o->name ? o->name : vm->name);
  sb_add (&b, "</name>\n");
  if (vm->bios_uuid && strlen (vm->bios_uuid) == 36) {
    /* The source's SMBIOS UUID: the guest (and its licences) see the same machine. */
    sb_add (&b, "  <uuid>");
    sb_add_xml (&b, vm->bios_uuid);
    sb_add (&b, "</uuid>\n");
  }
  sb_add (&b, "  <metadata>\n    <v2k:migration xmlns:v2k='https://ablestack.io/ablestack-v2k/1'>\n      <v2k:run");
  attr (&b, "id", m->run.id);
  sb_add (&b, "/>\n      <v2k:source");
  attr (&b, "vcenter", m->source.vcenter.url ? m->source.vcenter.url : "");
  attr (&b, "moref", vm->moref);
  attr (&b, "instance_uuid", vm->instance_uuid);
  sb_add (&b, "/>\n    </v2k:migration>\n  </metadata>\n");
  sb_addf (&b, "  <memory unit='KiB'>%lld</memory>\n  <currentMemory unit='KiB'>%lld</currentMemory>\n",
           (long long) vm->memory_mb * 1024, (long long) vm->memory_mb * 1024);
  sb_addf (&b, "  <vcpu placement='static'>%lld</vcpu>\n", (long long) cpus);
  sb_addf (&b, "  <os%s>\n    <type arch='x86_64' machine='q35'>hvm</type>\n", efi ? " firmware='efi'" : "");
  if (efi)
    sb_addf (&b, "    <firmware>\n      <feature enabled='%s' name='secure-boot'/>\n"
             "      <feature enabled='%s' name='enrolled-keys'/>\n    </firmware>\n",
             vm->secure_boot ? "yes" : "no", vm->secure_boot ? "yes" : "no");
  sb_add (&b, "  </os>\n  <features>\n    <acpi/>\n    <apic/>\n");
  if (efi && vm->secure_boot)
    sb_add (&b, "    <smm state='on'/>\n");
  if (windows)
    sb_add (&b, "    <hyperv mode='custom'>\n      <relaxed state='on'/>\n      <vapic state='on'/>\n"
            "      <spinlocks state='on' retries='8191'/>\n    </hyperv>\n");
  sb_add (&b, "  </features>\n");
  sb_addf (&b, "  <cpu mode='host-model'>\n    <topology sockets='%lld' dies='1' cores='%lld' threads='1'/>\n  </cpu>\n",
           (long long) (cpus / cores), (long long) cores);
  sb_addf (&b, "  <clock offset='%s'/>\n", windows ? "localtime" : "utc");
  sb_add (&b, "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n"
          "  <on_crash>destroy</on_crash>\n  <devices>\n");
  if (o->disk_bus == DISK_BUS_VIRTIO_SCSI)
    sb_add (&b, "    <controller type='scsi' index='0' model='virtio-scsi'/>\n");
  for (size_t i = 0; i < m->n_disks; i++)
    if (add_disk (&b, m, o, i, err) == -1) {
      sb_free (&b);
      return NULL;
    }
  for (size_t i = 0; i < m->n_nics; i++)
    add_nic (&b, &m->nics[i], o);
  sb_add (&b, "    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n"
          "    </channel>\n    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n"
          "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n"
          "    <input type='tablet' bus='usb'/>\n"
          "    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>\n"
          "    <video>\n      <model type='vga'/>\n    </video>\n");
  if (vm->vtpm)
    sb_add (&b, "    <tpm model='tpm-crb'>\n      <backend type='emulator' version='2.0'/>\n    </tpm>\n");
  sb_add (&b, "  </devices>\n</domain>\n");
  return sb_steal (&b);
}
