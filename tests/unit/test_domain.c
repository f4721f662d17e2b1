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
  };
  return cmocka_run_group_tests_name ("domain", tests, NULL, NULL);
}
