/* What must be refused: changed-area replies that vCenter should never send
 * (each check in v2k_changed_areas_page, on replies written here), and
 * manifests whose fields disagree with each other (check_consistency).
 * tests/mutate (make mutate) relies on these checks. */
#include <sys/wait.h>
#include "test_helpers.h"
#include <jansson.h>

#include "state/manifest.h"
#include "vsphere/cbt.h"
#include "vsphere/soap.h"
#include "vsphere/xml.h"

/* ------------------------------------------------------------ changed areas */

/* Parses one reply whose returnval holds RV and checks it as page 1, asked
 * from OFFSET on a disk of CAPACITY. */
static int
page (const char *rv, int64_t offset, int64_t capacity, int64_t *prev_end, v2k_extents *out,
      int64_t *next, struct v2k_error *err)
{
  char *text;
  assert_true (asprintf (&text,
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>"
    "<QueryChangedDiskAreasResponse xmlns=\"urn:vim25\"><returnval>%s</returnval>"
    "</QueryChangedDiskAreasResponse></soapenv:Body></soapenv:Envelope>", rv) > 0);
  struct v2k_error perr = { 0 };
  xmlDoc *doc = v2k_xml_parse (text, strlen (text), &perr);
  if (!doc)
    fail_msg ("%s", perr.message);
  xmlNode *body = v2k_soap_body (doc);
  assert_non_null (body);
  memset (err, 0, sizeof *err);
  int r = v2k_changed_areas_page (body, offset, capacity, 1, prev_end, out, next, err);
  xmlFreeDoc (doc);
  free (text);
  return r;
}

#define AREA(s, l) "<changedArea><start>" #s "</start><length>" #l "</length></changedArea>"

static void
test_good_pages (void **state)
{
  (void) state;
  v2k_extents ex = empty_vector;
  struct v2k_error err;
  int64_t prev = 0, next = -1;
  /* Touching areas merge; NEXT is the end of the range the reply covers. */
  assert_int_equal (page ("<startOffset>0</startOffset><length>1048576</length>"
                          AREA (0, 4096) AREA (4096, 4096) AREA (65536, 4096), 0, 4194304,
                          &prev, &ex, &next, &err), 0);
  assert_int_equal (next, 1048576);
  assert_int_equal (prev, 69632);
  assert_int_equal (ex.len, 2);
  assert_int_equal (ex.ptr[0].length, 8192);
  assert_int_equal (ex.ptr[1].start, 65536);
  /* The second page ends exactly at the capacity, its area too. */
  assert_int_equal (page ("<startOffset>1048576</startOffset><length>3145728</length>"
                          AREA (4190208, 4096), 1048576, 4194304, &prev, &ex, &next, &err), 0);
  assert_int_equal (next, 4194304);
  assert_int_equal (ex.len, 3);
  assert_int_equal (v2k_extents_bytes (&ex), 16384);
  /* A page with no areas. */
  prev = 0;
  assert_int_equal (page ("<startOffset>0</startOffset><length>4194304</length>", 0, 4194304,
                          &prev, &ex, &next, &err), 0);
  assert_int_equal (next, 4194304);
  v2k_extents_reset (&ex);
}

struct bad_page { const char *name, *rv; int64_t offset; const char *want; };

static void
test_bad_pages (void **state)
{
  (void) state;
  static const struct bad_page cases[] = {
    { "no length", "<startOffset>0</startOffset>", 0, "has no startOffset or length" },
    { "no startOffset", "<length>4096</length>", 0, "has no startOffset or length" },
    { "another start", "<startOffset>4096</startOffset><length>4096</length>", 0, "starts at 4096" },
    { "empty range", "<startOffset>0</startOffset><length>0</length>", 0, "has length 0" },
    { "negative range", "<startOffset>0</startOffset><length>-5</length>", 0, "has length -5" },
    { "past the capacity", "<startOffset>0</startOffset><length>4194305</length>", 0, "past the capacity" },
    { "area without length", "<startOffset>0</startOffset><length>4096</length>"
      "<changedArea><start>0</start></changedArea>", 0, "an area without start or length" },
    { "empty area", "<startOffset>0</startOffset><length>1048576</length>" AREA (4096, 0), 0,
      "of length 0" },
    { "negative area", "<startOffset>0</startOffset><length>1048576</length>" AREA (4096, -1), 0,
      "of length -1" },
    { "area before the range", "<startOffset>1048576</startOffset><length>1048576</length>"
      AREA (1044480, 8192), 1048576, "outside its range" },
    { "area past the range", "<startOffset>0</startOffset><length>1048576</length>"
      AREA (1044480, 8192), 0, "outside its range" },
    { "overlapping areas", "<startOffset>0</startOffset><length>1048576</length>"
      AREA (0, 8192) AREA (4096, 4096), 0, "overlapping or before" },
    { "areas out of order", "<startOffset>0</startOffset><length>1048576</length>"
      AREA (65536, 4096) AREA (0, 4096), 0, "overlapping or before" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    v2k_extents ex = empty_vector;
    struct v2k_error err;
    int64_t prev = cases[i].offset, next = -1;
    int r = page (cases[i].rv, cases[i].offset, 4194304, &prev, &ex, &next, &err);
    if (r != -1 || err.code != V2K_EXIT_CBT || !strstr (err.message, cases[i].want) ||
        !strstr (err.message, "refusing to trust CBT"))
      fail_msg ("case '%s': got %d \"%s\", want \"%s\"", cases[i].name, r, err.message, cases[i].want);
    assert_int_equal (next, -1);
    v2k_extents_reset (&ex);
  }
}

/* ------------------------------------------------------------ manifests */

struct bad_case {
  const char *name;
  void (*mutate) (json_t *root);
  const char *want;             /* NULL: must be accepted */
};

static json_t *disk (json_t *r, size_t i) { return json_array_get (json_object_get (r, "disks"), i); }
static void m_done_past_total (json_t *r)
{
  json_t *b = json_object_get (disk (r, 0), "incr");
  json_object_set_new (b, "bytes_total", json_integer (100));
  json_object_set_new (b, "bytes_done", json_integer (101));
}
static void m_done_equal_total (json_t *r)
{
  json_t *b = json_object_get (disk (r, 0), "incr");
  json_object_set_new (b, "bytes_total", json_integer (100));
  json_object_set_new (b, "bytes_done", json_integer (100));
}
static void m_dup_key (json_t *r) { json_object_set (disk (r, 1), "key", json_object_get (disk (r, 0), "key")); }
static void m_dup_target (json_t *r) { json_object_set (disk (r, 1), "target_path", json_object_get (disk (r, 0), "target_path")); }
static void m_checkpoint_capacity (json_t *r)
{
  json_object_set (json_object_get (disk (r, 1), "final"), "checkpoint", json_object_get (disk (r, 1), "capacity"));
}
static void m_checkpoint_past (json_t *r)
{
  json_object_set_new (json_object_get (disk (r, 1), "final"), "checkpoint",
                       json_integer (json_integer_value (json_object_get (disk (r, 1), "capacity")) + 1));
}
static void m_unknown_nested (json_t *r) { json_object_set_new (json_object_get (disk (r, 1), "base"), "resume", json_true ()); }
static void m_null_optional (json_t *r) { json_object_set_new (json_object_get (disk (r, 0), "cbt"), "change_id", json_null ()); }
static void m_missing_obj (json_t *r) { json_object_del (disk (r, 1), "counters"); }
static void m_item_type (json_t *r) { json_array_set_new (json_object_get (r, "disks"), 1, json_string ("scsi0:1")); }

static const struct bad_case cases[] = {
  { "bytes_done past bytes_total", m_done_past_total, "disks[0].incr.bytes_done: 101 exceeds bytes_total 100" },
  { "bytes_done equal to bytes_total", m_done_equal_total, NULL },
  { "duplicate key", m_dup_key, "disks[1]: same id or key as disks[0]" },
  { "duplicate target", m_dup_target, "disks[1].target_path: same as disks[0]" },
  { "checkpoint at the capacity", m_checkpoint_capacity, NULL },
  { "checkpoint one past the capacity", m_checkpoint_past, "disks[1].final.checkpoint" },
  { "unknown nested field", m_unknown_nested, "disks[1].base.resume: unknown field" },
  { "null optional string", m_null_optional, NULL },
  { "missing required object", m_missing_obj, "disks[1].counters: required field is missing" },
  { "array item type", m_item_type, "disks[1]: expected an object, got a string" },
};

static void
test_manifest_consistency (void **state)
{
  (void) state;
  char *path = fixture_path ("manifest-full.json");
  char *text = slurp (path);
  free (path);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *root = json_loads (text, 0, NULL);
    assert_non_null (root);
    cases[i].mutate (root);
    char *bad = json_dumps (root, 0);
    json_decref (root);
    struct v2k_error err = { 0 };
    struct v2k_manifest *m = v2k_manifest_parse (bad, strlen (bad), "/w/manifest.json", &err);
    if (cases[i].want && (m || !strstr (err.message, cases[i].want) || err.code != V2K_EXIT_WORKDIR))
      fail_msg ("case '%s': got \"%s\" (code %d), want \"%s\"", cases[i].name,
                m ? "(accepted)" : err.message, err.code, cases[i].want);
    if (!cases[i].want && !m)
      fail_msg ("case '%s': refused: %s", cases[i].name, err.message);
    v2k_manifest_free (m);
    free (bad);
  }
  free (text);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_good_pages),
    cmocka_unit_test (test_bad_pages),
    cmocka_unit_test (test_manifest_consistency),
  };
  return cmocka_run_group_tests_name ("strict", tests, NULL, NULL);
}
