/* vSphere SOAP parsing on recorded replies (tests/fixtures/soap, recorded
 * against the simulator), the fault mapping, changed-area page checks and
 * changeId epochs. */
#include <sys/wait.h>
#include "test_helpers.h"
#include <libxml/parser.h>

#include "state/manifest.h"
#include "vsphere/cbt.h"
#include "vsphere/inventory.h"
#include "vsphere/soap.h"
#include "vsphere/xml.h"

static xmlDoc *
load_sample (const char *name, xmlNode **body)
{
  char rel[256];
  snprintf (rel, sizeof rel, "soap/%s", name);
  char *path = fixture_path (rel);
  char *text = slurp (path);
  struct v2k_error err = { 0 };
  xmlDoc *doc = v2k_xml_parse (text, strlen (text), &err);
  if (!doc)
    fail_msg ("%s: %s", name, err.message);
  *body = v2k_soap_body (doc);
  assert_non_null (*body);
  free (text);
  free (path);
  return doc;
}

static void
test_service_content (void **state)
{
  (void) state;
  xmlNode *body;
  xmlDoc *doc = load_sample ("01-RetrieveServiceContent.resp.xml", &body);
  assert_string_equal ((const char *) body->name, "RetrieveServiceContentResponse");
  xmlNode *rv = v2k_xml_child (body, "returnval");
  char *pc = v2k_xml_child_text (rv, "propertyCollector");
  char *api = v2k_xml_text (v2k_xml_path (rv, "about", "apiVersion", NULL));
  char *uuid = v2k_xml_text (v2k_xml_path (rv, "about", "instanceUuid", NULL));
  assert_string_equal (pc, "propertyCollector");
  assert_string_equal (api, "6.5");
  assert_string_equal (uuid, "dbed6e0c-bd88-4ef6-b594-21283e1c677f");
  free (pc);
  free (api);
  free (uuid);
  xmlFreeDoc (doc);
}

struct fault_case { const char *file, *name, *prop, *file_field, *msg; int code; };

static void
test_faults (void **state)
{
  (void) state;
  static const struct fault_case cases[] = {
    { "02a-Login-bad.resp.xml", "InvalidLogin", "", "", "Login failure", V2K_EXIT_CONNECT },
    { "02b-CurrentTime-noauth.resp.xml", "NotAuthenticated", "", "", NULL, V2K_EXIT_CONNECT },
    { "08e-QueryChangedDiskAreas-badchangeid.resp.xml", "InvalidArgument", "changeId", "",
      "A specified parameter was not correct: changeId", V2K_EXIT_VSPHERE },
    { "08f-QueryChangedDiskAreas-nosnap-poweredon.resp.xml", "FileFault", "",
      "[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmx", NULL, V2K_EXIT_VSPHERE },
    { "10g-ShutdownGuest-poweredoff.resp.xml", "InvalidPowerState", "", "", NULL, V2K_EXIT_VSPHERE },
    { "13-QueryChangedDiskAreas-after-logout.resp.xml", "NotAuthenticated", "", "",
      "The session is not authenticated.", V2K_EXIT_CONNECT },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    xmlNode *body;
    xmlDoc *doc = load_sample (cases[i].file, &body);
    struct v2k_fault f;
    assert_true (v2k_soap_fault_parse (body, &f));
    assert_string_equal (f.name, cases[i].name);
    assert_string_equal (f.invalid_property, cases[i].prop);
    assert_string_equal (f.file, cases[i].file_field);
    if (cases[i].msg)
      assert_string_equal (f.message, cases[i].msg);
    struct v2k_error err = { 0 };
    v2k_fault_to_error (&f, "Method", &err);
    assert_int_equal (err.code, cases[i].code);
    assert_non_null (strstr (err.message, cases[i].name));
    xmlFreeDoc (doc);
  }
  /* A response is not a fault. */
  xmlNode *body;
  xmlDoc *doc = load_sample ("03-FindByInventoryPath.resp.xml", &body);
  struct v2k_fault f;
  assert_false (v2k_soap_fault_parse (body, &f));
  xmlFreeDoc (doc);
}

/* Prefixes do not matter, namespaces do. */
static void
test_namespaces (void **state)
{
  (void) state;
  const char *odd =
    "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\">"
    "<e:Body><v:X xmlns:v=\"urn:vim25\"><v:returnval i:type=\"VirtualDisk\"><v:key>7</v:key></v:returnval>"
    "<returnval xmlns=\"urn:other\"><key>8</key></returnval></v:X></e:Body></e:Envelope>";
  struct v2k_error err = { 0 };
  xmlDoc *doc = v2k_xml_parse (odd, strlen (odd), &err);
  assert_non_null (doc);
  xmlNode *body = v2k_soap_body (doc);
  xmlNode *rv = v2k_xml_child (body, "returnval");
  assert_true (v2k_xml_type_is (rv, "VirtualDisk"));
  int64_t key;
  assert_int_equal (v2k_xml_child_int64 (rv, "key", &key), 0);
  assert_int_equal (key, 7);
  assert_null (v2k_xml_next (rv));  /* the other one is in another namespace */
  xmlFreeDoc (doc);
}

static void
test_hostile_xml (void **state)
{
  (void) state;
  struct v2k_error err = { 0 };
  const char *laughs = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]><x>&b;</x>";
  assert_null (v2k_xml_parse (laughs, strlen (laughs), &err));
  assert_non_null (strstr (err.message, "DTD"));
  const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>";
  assert_null (v2k_xml_parse (xxe, strlen (xxe), &err));
  const char *trunc = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Bo";
  assert_null (v2k_xml_parse (trunc, strlen (trunc), &err));
  assert_non_null (strstr (err.message, "malformed SOAP response"));
  assert_null (strchr (err.message, '\n'));
  /* Deep nesting is refused by libxml2's depth limit, not by a crash. */
  size_t depth = 100000;
  char *deep = malloc (depth * 7 + 1);
  char *p = deep;
  for (size_t i = 0; i < depth; i++) p += sprintf (p, "<a>");
  for (size_t i = 0; i < depth; i++) p += sprintf (p, "</a>");
  assert_null (v2k_xml_parse (deep, (size_t) (p - deep), &err));
  free (deep);
}

static void
test_devices (void **state)
{
  (void) state;
  xmlNode *body;
  xmlDoc *doc = load_sample ("05d-RetrievePropertiesEx-devices-after-cbt.resp.xml", &body);
  xmlNode *val = v2k_xml_path (body, "returnval", "objects", "propSet", "val", NULL);
  assert_non_null (val);
  struct v2k_manifest m = { 0 };
  struct v2k_inventory_report r = { 0 };
  struct v2k_error err = { 0 };
  assert_int_equal (v2k_inventory_parse_devices (val, NULL, &m, &r, &err), 0);
  assert_int_equal (m.n_disks, 1);
  assert_string_equal (m.disks[0].id, "scsi0:0");
  assert_int_equal (m.disks[0].key, 2000);
  assert_int_equal (m.disks[0].capacity, 67108864);
  assert_string_equal (m.disks[0].controller.model, "pvscsi");
  assert_string_equal (m.disks[0].file_name, "[LocalDS_0] DC0_H0_VM0/disk1.vmdk");
  assert_string_equal (m.disks[0].datastore, "LocalDS_0");
  assert_true (m.disks[0].thin);
  assert_int_equal (m.n_nics, 1);
  assert_string_equal (m.nics[0].adapter, "e1000");
  assert_string_equal (m.nics[0].mac, "00:0c:29:36:63:62");
  assert_string_equal (m.nics[0].network, "dvportgroup-13");  /* resolved to a name online */
  assert_int_equal (r.nrefusals, 0);
  v2k_inventory_report_free (&r);
  /* Everything parsed is owned by the manifest. */
  struct v2k_manifest *heap = calloc (1, sizeof *heap);
  *heap = m;
  v2k_manifest_free (heap);
  xmlFreeDoc (doc);
}

static void
test_snapshot_config (void **state)
{
  (void) state;
  xmlNode *body;
  xmlDoc *doc = load_sample ("06c-Snapshot-config-devices.resp.xml", &body);
  xmlNode *val = v2k_xml_path (body, "returnval", "objects", "propSet", "val", NULL);
  char *change = NULL;
  for (xmlNode *d = v2k_xml_child (val, NULL); d; d = v2k_xml_next (d))
    if (v2k_xml_type_is (d, "VirtualDisk"))
      change = v2k_xml_child_text (v2k_xml_child (d, "backing"), "changeId");
  assert_non_null (change);
  assert_non_null (strstr (change, "/1"));
  free (change);
  xmlFreeDoc (doc);

  doc = load_sample ("06b-Task-info-snapshot.resp.xml", &body);
  xmlNode *info = v2k_xml_path (body, "returnval", "objects", "propSet", "val", NULL);
  char *st = v2k_xml_child_text (info, "state");
  char *result = v2k_xml_child_text (info, "result");
  assert_string_equal (st, "success");
  assert_string_equal (result, "snapshot-70");
  free (st);
  free (result);
  xmlFreeDoc (doc);
}

static int
page (const char *file, int64_t offset, int64_t capacity, int64_t *prev_end, v2k_extents *out,
      int64_t *next, struct v2k_error *err)
{
  xmlNode *body;
  xmlDoc *doc = load_sample (file, &body);
  int r = v2k_changed_areas_page (body, offset, capacity, 1, prev_end, out, next, err);
  xmlFreeDoc (doc);
  return r;
}

static void
test_changed_area_pages (void **state)
{
  (void) state;
  v2k_extents ex = empty_vector;
  struct v2k_error err = { 0 };
  int64_t prev = 0, next = 0;
  const int64_t cap = 64 << 20;
  assert_int_equal (page ("07a-QueryChangedDiskAreas-star.resp.xml", 0, cap, &prev, &ex, &next, &err), 0);
  assert_int_equal (next, 1 << 20);
  assert_int_equal (page ("07b-QueryChangedDiskAreas-star-page2.resp.xml", next, cap, &prev, &ex, &next, &err), 0);
  assert_int_equal (next, cap);
  assert_int_equal (ex.len, 2);
  assert_int_equal (ex.ptr[1].start, 32 << 20);
  assert_int_equal (v2k_extents_bytes (&ex), (1 << 20) + 65536);
  /* Asked from the wrong offset: refused with page and offset. */
  prev = 0;
  assert_int_equal (page ("07b-QueryChangedDiskAreas-star-page2.resp.xml", 0, cap, &prev, &ex, &next, &err), -1);
  assert_int_equal (err.code, V2K_EXIT_CBT);
  assert_non_null (strstr (err.message, "reply 1 (asked from offset 0) starts at 1048576"));
  /* Past the capacity. */
  prev = 0;
  assert_int_equal (page ("08d-QueryChangedDiskAreas-delta.resp.xml", 0, 32 << 20, &prev, &ex, &next, &err), -1);
  assert_non_null (strstr (err.message, "past the capacity"));
  /* An area before the previous one's end. */
  prev = 9 << 20;
  assert_int_equal (page ("08d-QueryChangedDiskAreas-delta.resp.xml", 0, cap, &prev, &ex, &next, &err), -1);
  assert_non_null (strstr (err.message, "overlapping or before"));
  v2k_extents_reset (&ex);
}

static void
test_change_id_epochs (void **state)
{
  (void) state;
  const char *a = "52 9a c4 45 e8 b3 57 ce-47 ec 8f 32 bd 87 90 0a/1";
  const char *b = "52 9a c4 45 e8 b3 57 ce-47 ec 8f 32 bd 87 90 0a/7";
  const char *c = "52 00 c4 45 e8 b3 57 ce-47 ec 8f 32 bd 87 90 0a/7";
  assert_true (v2k_change_id_same_epoch (a, b));
  assert_false (v2k_change_id_same_epoch (a, c));
  assert_false (v2k_change_id_same_epoch (a, "*"));
}

static void
test_sdk_url (void **state)
{
  (void) state;
  struct v2k_error err = { 0 };
  struct { const char *in, *out; } ok[] = {
    { "vc.example.com", "https://vc.example.com/sdk" },
    { "vc.example.com:8443", "https://vc.example.com:8443/sdk" },
    { "https://vc.example.com", "https://vc.example.com/sdk" },
    { "https://vc.example.com/sdk", "https://vc.example.com/sdk" },
    { "https://[::1]:443/sdk", "https://[::1]:443/sdk" },
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char *u = v2k_vsphere_sdk_url (ok[i].in, &err);
    assert_non_null (u);
    assert_string_equal (u, ok[i].out);
    free (u);
  }
  const char *bad[] = { "", "http://vc", "https://user:pw@vc/sdk", "vc host", "vc;rm" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_null (v2k_vsphere_sdk_url (bad[i], &err));
    assert_int_equal (err.code, V2K_EXIT_USAGE);
  }
}

static void
test_datastore_path (void **state)
{
  (void) state;
  char *ds, *p;
  assert_int_equal (v2k_datastore_path_parse ("[LocalDS_0] web01/web01.vmdk", &ds, &p), 0);
  assert_string_equal (ds, "LocalDS_0");
  assert_string_equal (p, "web01/web01.vmdk");
  free (ds);
  free (p);
  assert_int_equal (v2k_datastore_path_parse ("[ds with space]dir/f.vmdk", &ds, &p), 0);
  assert_string_equal (ds, "ds with space");
  assert_string_equal (p, "dir/f.vmdk");
  free (ds);
  free (p);
  assert_int_equal (v2k_datastore_path_parse ("no brackets", &ds, &p), -1);
  assert_int_equal (v2k_datastore_path_parse ("[] x", &ds, &p), -1);
  assert_int_equal (v2k_datastore_path_parse ("[unterminated x", &ds, &p), -1);
}

int
main (void)
{
  xmlInitParser ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_service_content),
    cmocka_unit_test (test_faults),
    cmocka_unit_test (test_namespaces),
    cmocka_unit_test (test_hostile_xml),
    cmocka_unit_test (test_devices),
    cmocka_unit_test (test_snapshot_config),
    cmocka_unit_test (test_changed_area_pages),
    cmocka_unit_test (test_change_id_epochs),
    cmocka_unit_test (test_sdk_url),
    cmocka_unit_test (test_datastore_path),
  };
  int r = cmocka_run_group_tests_name ("vsphere", tests, NULL, NULL);
  xmlCleanupParser ();
  return r;
}
