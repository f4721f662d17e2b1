/* The domain XML: golden files for firmware, buses, targets and networks;
 * each validated by virt-xml-validate and defined with
 * VIR_DOMAIN_DEFINE_VALIDATE in libvirt's test:///default driver.
 * V2K_UPDATE_GOLDEN=1 rewrites the golden files. */
#include <sys/wait.h>
#include "test_helpers.h"
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "kvm/domain.h"
#include "state/manifest.h"

static struct v2k_manifest *
fixture (void)
{
  char *path = fixture_path ("manifest-full.json");
  char *text = slurp (path);
  struct v2k_error err = { 0 };
  struct v2k_manifest *m = v2k_manifest_parse (text, strlen (text), path, &err);
  assert_non_null (m);
  free (text);
  free (path);
  return m;
}

static void
set (char **field, const char *value)
{
  free (*field);
  *field = value ? strdup (value) : NULL;
}

static void
ignore_libvirt_errors (void *opaque, virErrorPtr e)
{
  (void) opaque;
  (void) e;
}

static void
validate_and_define (const char *name, const char *xml)
{
  char path[256];
  snprintf (path, sizeof path, "/tmp/v2k-domain-%s-%d.xml", name, getpid ());
  FILE *fp = fopen (path, "w");
  assert_non_null (fp);
  fputs (xml, fp);
  fclose (fp);
  if (access ("/usr/bin/virt-xml-validate", X_OK) == 0) {
    pid_t pid = fork ();
    if (pid == 0) {
      int null = open ("/dev/null", O_WRONLY);
      dup2 (null, 1);
      dup2 (null, 2);
      execl ("/usr/bin/virt-xml-validate", "virt-xml-validate", path, "domain", (char *) NULL);
      _exit (127);
    }
    int st;
    waitpid (pid, &st, 0);
    if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
      fail_msg ("%s: virt-xml-validate refused %s", name, path);
  }
  unlink (path);
  virSetErrorFunc (NULL, ignore_libvirt_errors);
  virConnectPtr conn = virConnectOpen ("test:///default");
  assert_non_null (conn);
  virDomainPtr dom = virDomainDefineXMLFlags (conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
  if (!dom) {
    virErrorPtr e = virGetLastError ();
    fail_msg ("%s: libvirt refused the domain: %s", name, e && e->message ? e->message : "?");
  }
  virDomainFree (dom);
  virConnectClose (conn);
}

static void
golden (const char *name, const char *xml)
{
  char rel[128];
  snprintf (rel, sizeof rel, "domain/%s.xml", name);
  char *path = fixture_path (rel);
  if (getenv ("V2K_UPDATE_GOLDEN")) {
    FILE *fp = fopen (path, "w");
    assert_non_null (fp);
    fputs (xml, fp);
    fclose (fp);
  }
  char *want = slurp (path);
  if (strcmp (want, xml) != 0)
    fail_msg ("%s differs from %s:\n%s", name, path, xml);
  free (want);
  free (path);
  validate_and_define (name, xml);
}

static const char *const bridge_map[] = { "VM Network=bridge:br0", "Prod Net=network:default" };

static void
test_efi_secure_boot_vtpm (void **state)
{
  (void) state;
  struct v2k_manifest *m = fixture ();
  m->source.vm.vtpm = true;
  struct v2k_domain_opts o = { .net_map = bridge_map, .n_net_map = 2 };
  struct v2k_error err = { 0 };
  char *xml = v2k_domain_xml (m, &o, &err);
  assert_non_null (xml);
  assert_non_null (strstr (xml, "<os firmware='efi'>"));
  assert_non_null (strstr (xml, "<feature enabled='yes' name='secure-boot'/>"));
  assert_non_null (strstr (xml, "<smm state='on'/>"));
  assert_non_null (strstr (xml, "<tpm model='tpm-crb'>"));
  assert_non_null (strstr (xml, "<topology sockets='2' dies='1' cores='2' threads='1'/>"));
  assert_non_null (strstr (xml, "<target dev='sda' bus='sata'/>"));
  assert_non_null (strstr (xml, "<mac address='00:50:56:10:00:01'/>"));
  assert_non_null (strstr (xml, "<model type='e1000e'/>"));
  golden ("efi-secure-boot-vtpm", xml);
  free (xml);
  v2k_manifest_free (m);
}

static void
test_bios_virtio (void **state)
{
  (void) state;
  struct v2k_manifest *m = fixture ();
  m->source.vm.firmware = FIRMWARE_BIOS;
  m->source.vm.secure_boot = false;
  m->source.vm.num_cpus = 3;   /* not a multiple of cores: one core a socket */
  struct v2k_domain_opts o = { .disk_bus = DISK_BUS_VIRTIO, .nic_model = NIC_VIRTIO,
                               .net_default = "network:default", .name = "web01-migrated" };
  struct v2k_error err = { 0 };
  char *xml = v2k_domain_xml (m, &o, &err);
  assert_non_null (xml);
  assert_null (strstr (xml, "firmware="));
  assert_non_null (strstr (xml, "<target dev='vdb' bus='virtio'/>"));
  assert_non_null (strstr (xml, "<topology sockets='3' dies='1' cores='1' threads='1'/>"));
  golden ("bios-virtio", xml);
  free (xml);
  v2k_manifest_free (m);
}

static void
test_block_no_nics (void **state)
{
  (void) state;
  struct v2k_manifest *m = fixture ();
  m->target.storage = STORAGE_BLOCK;
  set (&m->disks[0].target_path, "/dev/sdx");
  set (&m->disks[1].target_path, "/dev/sdy");
  m->n_nics = 0;  /* the nics stay allocated; the manifest frees them by count */
  struct v2k_domain_opts o = { 0 };
  struct v2k_error err = { 0 };
  char *xml = v2k_domain_xml (m, &o, &err);
  m->n_nics = 2;
  assert_non_null (xml);
  assert_non_null (strstr (xml, "<disk type='block' device='disk'>"));
  assert_non_null (strstr (xml, "type='raw'"));
  assert_null (strstr (xml, "<interface"));
  golden ("block-no-nics", xml);
  free (xml);
  v2k_manifest_free (m);
}

static void
test_rbd_windows_virtio_scsi (void **state)
{
  (void) state;
  struct v2k_manifest *m = fixture ();
  m->target.storage = STORAGE_RBD;
  m->target.format = FORMAT_RAW;
  set (&m->disks[0].target_path, "rbd:rbd/web01-disk0");
  set (&m->disks[1].target_path, "rbd:rbd/web01-disk1");
  set (&m->source.vm.guest_id, "windows2019srv_64Guest");
  set (&m->source.vm.name, "win <&> \"quoted\" 'name'");
  static const char *const mons[] = { "10.0.0.1:6789", "10.0.0.2:3300" };
  struct v2k_domain_opts o = { .disk_bus = DISK_BUS_VIRTIO_SCSI, .net_default = "bridge:br0",
                               .rbd_secret = "6a1b7c3e-2f4d-4e8a-9b0c-1d2e3f4a5b6c",
                               .rbd_user = "libvirt", .rbd_monitors = mons, .n_rbd_monitors = 2 };
  struct v2k_error err = { 0 };
  char *xml = v2k_domain_xml (m, &o, &err);
  assert_non_null (xml);
  assert_non_null (strstr (xml, "<source protocol='rbd' name='rbd/web01-disk0'>"));
  assert_non_null (strstr (xml, "<secret type='ceph' uuid='6a1b7c3e-2f4d-4e8a-9b0c-1d2e3f4a5b6c'/>"));
  assert_non_null (strstr (xml, "<controller type='scsi' index='0' model='virtio-scsi'/>"));
  assert_non_null (strstr (xml, "<clock offset='localtime'/>"));
  assert_non_null (strstr (xml, "<hyperv mode='custom'>"));
  assert_non_null (strstr (xml, "<name>win &lt;&amp;&gt; &quot;quoted&quot; &apos;name&apos;</name>"));
  golden ("rbd-windows-virtio-scsi", xml);
  free (xml);
  v2k_manifest_free (m);
}

/* A manifest with NDISKS disks on mixed controllers and NNICS NICs, made
 * from the fixture's JSON. */
static struct v2k_manifest *
fixture_sized (int ndisks, int nnics, int storage, int format)
{
  static const char *const ctrl[] = { "scsi", "sata", "ide", "scsi" };
  static const char *const nets[] = { "VM Network", "Prod Net", "Backup" };
  char *path = fixture_path ("manifest-full.json");
  char *text = slurp (path);
  json_t *j = json_loads (text, 0, NULL);
  assert_non_null (j);
  json_t *disks = json_object_get (j, "disks"), *nics = json_object_get (j, "nics");
  json_t *d0 = json_deep_copy (json_array_get (disks, 0)), *n0 = json_deep_copy (json_array_get (nics, 0));
  json_array_clear (disks);
  json_array_clear (nics);
  for (int i = 0; i < ndisks; i++) {
    json_t *d = json_deep_copy (d0);
    char id[32], tp[128];
    snprintf (id, sizeof id, "%s%d:%d", ctrl[i], i / 2, i % 2);
    if (storage == STORAGE_RBD)
      snprintf (tp, sizeof tp, "rbd:pool/vm-disk%d", i);
    else if (storage == STORAGE_BLOCK)
      snprintf (tp, sizeof tp, "/dev/vd%c", 'b' + i);
    else
      snprintf (tp, sizeof tp, "/var/lib/libvirt/images/vm-disk%d.%s", i, format == FORMAT_RAW ? "raw" : "qcow2");
    json_object_set_new (d, "id", json_string (id));
    json_object_set_new (d, "key", json_integer (2000 + i));
    json_object_set_new (d, "target_path", json_string (tp));
    json_object_set_new (json_object_get (d, "controller"), "kind", json_string (ctrl[i]));
    json_array_append_new (disks, d);
  }
  for (int i = 0; i < nnics; i++) {
    json_t *n = json_deep_copy (n0);
    char mac[32];
    snprintf (mac, sizeof mac, "00:50:56:aa:bb:%02x", i);
    json_object_set_new (n, "key", json_integer (4000 + i));
    json_object_set_new (n, "mac", json_string (mac));
    json_object_set_new (n, "network", json_string (nets[i]));
    json_array_append_new (nics, n);
  }
  json_t *t = json_object_get (j, "target");
  json_object_set_new (t, "storage", json_string (v2k_storage_names[storage]));
  json_object_set_new (t, "format", json_string (v2k_format_names[format]));
  json_object_set_new (j, "snapshots", json_array ());
  char *out = json_dumps (j, 0);
  struct v2k_error err = { 0 };
  struct v2k_manifest *m = v2k_manifest_parse (out, strlen (out), path, &err);
  if (!m)
    fail_msg ("fixture: %s", err.message);
  json_decref (d0);
  json_decref (n0);
  json_decref (j);
  free (out);
  free (text);
  free (path);
  return m;
}

/* Every combination of firmware, 1-4 disks, each target kind, 0-3 NICs
 * mapped to bridges and networks, and each bus: valid and definable. */
static void
test_matrix (void **state)
{
  (void) state;
  static const char *const maps[] = { "VM Network=bridge:br0", "Prod Net=network:default",
                                      "Backup=bridge:br-backup" };
  static const char *const mons[] = { "10.0.0.1:6789" };
  static const int kinds[][2] = { { STORAGE_FILE, FORMAT_QCOW2 }, { STORAGE_FILE, FORMAT_RAW },
                                  { STORAGE_BLOCK, FORMAT_RAW }, { STORAGE_RBD, FORMAT_RAW } };
  int combos = 0;
  for (int fw = 0; fw < 4; fw++)
    for (int nd = 1; nd <= 4; nd++)
      for (int k = 0; k < 4; k++)
        for (int nn = 0; nn <= 3; nn++) {
          struct v2k_manifest *m = fixture_sized (nd, nn, kinds[k][0], kinds[k][1]);
          m->source.vm.firmware = fw == 0 ? FIRMWARE_BIOS : FIRMWARE_EFI;
          m->source.vm.secure_boot = fw >= 2;
          m->source.vm.vtpm = fw == 3;
          struct v2k_domain_opts o = { .disk_bus = (nd + nn + fw) % 3, .nic_model = nn % 2,
                                       .net_map = maps, .n_net_map = 3,
                                       .rbd_secret = kinds[k][0] == STORAGE_RBD ? "6a1b7c3e-2f4d-4e8a-9b0c-1d2e3f4a5b6c" : NULL,
                                       .rbd_monitors = mons, .n_rbd_monitors = 1 };
          struct v2k_error err = { 0 };
          char *xml = v2k_domain_xml (m, &o, &err);
          if (!xml)
            fail_msg ("fw %d, %d disks, kind %d, %d nics: %s", fw, nd, k, nn, err.message);
          char name[64];
          snprintf (name, sizeof name, "matrix-%d-%d-%d-%d", fw, nd, k, nn);
          /* Every NIC keeps its MAC. */
          for (int i = 0; i < nn; i++) {
            char mac[64];
            snprintf (mac, sizeof mac, "<mac address='00:50:56:aa:bb:%02x'/>", i);
            assert_non_null (strstr (xml, mac));
          }
          validate_and_define (name, xml);
          combos++;
          free (xml);
          v2k_manifest_free (m);
        }
  assert_int_equal (combos, 256);
}

static void
test_refusals (void **state)
{
  (void) state;
  struct v2k_manifest *m = fixture ();
  struct v2k_domain_opts o = { 0 };
  struct v2k_error err = { 0 };
  assert_null (v2k_domain_xml (m, &o, &err));
  assert_non_null (strstr (err.message, "these VMware networks need a mapping: 'VM Network', 'Prod Net'"));
  static const char *const one[] = { "VM Network=bridge:br0" };
  o.net_map = one;
  o.n_net_map = 1;
  assert_null (v2k_domain_xml (m, &o, &err));
  assert_non_null (strstr (err.message, "need a mapping: 'Prod Net'"));
  static const char *const bad[] = { "VM Network=br0" };
  o.net_map = bad;
  assert_null (v2k_domain_xml (m, &o, &err));
  assert_non_null (strstr (err.message, "want bridge:NAME or network:NAME"));
  m->target.storage = STORAGE_RBD;
  o.net_default = "bridge:br0";
  o.n_net_map = 0;
  assert_null (v2k_domain_xml (m, &o, &err));
  assert_non_null (strstr (err.message, "monitors"));
  v2k_manifest_free (m);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_efi_secure_boot_vtpm),
    cmocka_unit_test (test_bios_virtio),
    cmocka_unit_test (test_block_no_nics),
    cmocka_unit_test (test_rbd_windows_virtio_scsi),
    cmocka_unit_test (test_refusals),
    cmocka_unit_test (test_matrix),
  };
  return cmocka_run_group_tests_name ("domain", tests, NULL, NULL);
}
