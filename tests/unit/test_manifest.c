/* Manifest: round trip and every kind of validation error. */
#include <sys/wait.h>
#include "test_helpers.h"
#include <jansson.h>

#include "state/manifest.h"

static char *
fixture_text (void)
{
  char *path = fixture_path ("manifest-full.json");
  char *text = slurp (path);
  free (path);
  return text;
}

static void
test_round_trip (void **state)
{
  (void) state;
  char *text = fixture_text ();
  struct v2k_error err = { 0 };
  struct v2k_manifest *m = v2k_manifest_parse (text, strlen (text), "fixture", &err);
  assert_non_null (m);
  assert_string_equal (m->source.vm.name, "web01");
  assert_int_equal (m->source.vm.firmware, FIRMWARE_EFI);
  assert_true (m->source.vm.secure_boot);
  assert_int_equal (m->n_disks, 2);
  assert_int_equal (m->disks[1].controller.kind, CTRL_SATA);
  assert_int_equal (m->disks[0].capacity, 67108864);
  assert_int_equal (m->n_nics, 2);
  assert_string_equal (m->nics[1].mac, "00:50:56:10:00:01");
  assert_int_equal (m->transport.n_datastore_map, 1);
  assert_string_equal (m->transport.datastore_map[0].value, "/mnt/ds0");
  assert_null (m->last_error);
  assert_int_equal (m->phases.init.state, STEP_DONE);

  /* Serialize, parse again, serialize again: the same text, and the same
   * JSON value as the fixture. */
  char *out1 = v2k_manifest_serialize (m);
  struct v2k_manifest *m2 = v2k_manifest_parse (out1, strlen (out1), "round trip", &err);
  assert_non_null (m2);
  char *out2 = v2k_manifest_serialize (m2);
  assert_string_equal (out1, out2);
  json_t *a = json_loads (text, 0, NULL), *b = json_loads (out1, 0, NULL);
  assert_true (json_equal (a, b));
  json_decref (a);
  json_decref (b);
  free (out1);
  free (out2);
  v2k_manifest_free (m);
  v2k_manifest_free (m2);
  free (text);
}

/* Each case edits the fixture with a small jansson mutation and names the
 * text the error must contain. */
struct bad_case {
  const char *name;
  void (*mutate) (json_t *root);
  const char *want;
};

static json_t *disk0 (json_t *r) { return json_array_get (json_object_get (r, "disks"), 0); }
static void m_wrong_type (json_t *r) { json_object_set_new (disk0 (r), "capacity", json_string ("64M")); }
static void m_missing (json_t *r) { json_object_del (json_object_get (r, "run"), "id"); }
static void m_schema (json_t *r) { json_object_set_new (r, "schema", json_string ("ablestack-v2k/manifest/v9")); }
static void m_no_schema (json_t *r) { json_object_del (r, "schema"); }
static void m_unknown (json_t *r) { json_object_set_new (json_object_get (r, "target"), "fromat", json_string ("raw")); }
static void m_enum (json_t *r) { json_object_set_new (json_object_get (r, "target"), "format", json_string ("vmdk")); }
static void m_negative (json_t *r) { json_object_set_new (json_object_get (json_object_get (r, "source"), "vm"), "num_cpus", json_integer (-2)); }
static void m_null_required (json_t *r) { json_object_set_new (disk0 (r), "file_name", json_null ()); }
static void m_array_type (json_t *r) { json_object_set_new (r, "disks", json_object ()); }
static void m_nested (json_t *r) { json_object_set_new (json_object_get (disk0 (r), "base"), "bytes_done", json_real (1.5)); }
static void m_dup_id (json_t *r) { json_object_set_new (json_array_get (json_object_get (r, "disks"), 1), "id", json_string ("scsi0:0")); }
static void m_zero_cap (json_t *r) { json_object_set_new (disk0 (r), "capacity", json_integer (0)); }
static void m_checkpoint (json_t *r) { json_object_set_new (json_object_get (disk0 (r), "base"), "checkpoint", json_integer (1LL << 40)); }
static void m_map_value (json_t *r) { json_object_set_new (json_object_get (json_object_get (r, "transport"), "datastore_map"), "ds2", json_integer (1)); }
static void m_bool (json_t *r) { json_object_set_new (json_object_get (disk0 (r), "cbt"), "enabled", json_string ("yes")); }

static const struct bad_case bad_cases[] = {
  { "wrong type", m_wrong_type, "disks[0].capacity: expected an integer, got a string" },
  { "missing field", m_missing, "run.id: required field is missing" },
  { "unknown schema version", m_schema, "schema: unknown version \"ablestack-v2k/manifest/v9\"" },
  { "no schema", m_no_schema, "schema: required field is missing" },
  { "unknown field", m_unknown, "target.fromat: unknown field" },
  { "bad enum", m_enum, "target.format: \"vmdk\" is not one of qcow2, raw" },
  { "negative", m_negative, "source.vm.num_cpus: must not be negative" },
  { "null required string", m_null_required, "disks[0].file_name: expected a string, got null" },
  { "array type", m_array_type, "disks: expected an array, got an object" },
  { "real for integer", m_nested, "disks[0].base.bytes_done: expected an integer, got a number" },
  { "duplicate disk id", m_dup_id, "disks[1]: same id or key as disks[0]" },
  { "zero capacity", m_zero_cap, "disks[0].capacity: must be positive" },
  { "checkpoint past capacity", m_checkpoint, "disks[0].base.checkpoint" },
  { "map value type", m_map_value, "transport.datastore_map.ds2: expected a string, got an integer" },
  { "bool type", m_bool, "disks[0].cbt.enabled: expected a boolean, got a string" },
};

static void
test_validation_errors (void **state)
{
  (void) state;
  char *text = fixture_text ();
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    json_t *root = json_loads (text, 0, NULL);
    assert_non_null (root);
    bad_cases[i].mutate (root);
    char *bad = json_dumps (root, 0);
    json_decref (root);
    struct v2k_error err = { 0 };
    struct v2k_manifest *m = v2k_manifest_parse (bad, strlen (bad), "/w/manifest.json", &err);
    if (m || !strstr (err.message, bad_cases[i].want) || err.code != V2K_EXIT_WORKDIR)
      fail_msg ("case '%s': got \"%s\" (code %d), want \"%s\"", bad_cases[i].name,
                m ? "(accepted)" : err.message, err.code, bad_cases[i].want);
    assert_non_null (strstr (err.message, "/w/manifest.json"));
    free (bad);
  }
  free (text);
}

static void
test_not_json (void **state)
{
  (void) state;
  struct v2k_error err = { 0 };
  const char *truncated = "{\"schema\": \"ablestack-v2k/manifest/v1\", \"run\": {";
  assert_null (v2k_manifest_parse (truncated, strlen (truncated), "m.json", &err));
  assert_non_null (strstr (err.message, "m.json: not valid JSON at line 1"));
  assert_null (v2k_manifest_parse ("[]", 2, "m.json", &err));
  assert_non_null (strstr (err.message, "schema"));
  const char *dup = "{\"schema\": \"a\", \"schema\": \"b\"}";
  assert_null (v2k_manifest_parse (dup, strlen (dup), "m.json", &err));
  assert_non_null (strstr (err.message, "duplicate"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_round_trip),
    cmocka_unit_test (test_validation_errors),
    cmocka_unit_test (test_not_json),
  };
  return cmocka_run_group_tests_name ("manifest", tests, NULL, NULL);
}
