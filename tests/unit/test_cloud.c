/* The cloud API signer against the golden vectors of
 * shared/reference/ablestack-cloud-api.md §1.5 (computed with the server's
 * own Java classes). */
#include "test_helpers.h"
#include "cloud/sign.h"

#define KEY "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg"
#define SECRET "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ"

static void
expect (const struct v2k_cloud_param *p, size_t n, int alg, const char *want)
{
  char *sig = v2k_cloud_sign (p, n, SECRET, alg);
  assert_non_null (sig);
  assert_string_equal (sig, want);
  free (sig);
}

static void
test_v0_guide (void **state)
{
  (void) state;
  struct v2k_cloud_param p[] = { { "apikey", KEY }, { "command", "listUsers" }, { "response", "json" } };
  char *s = v2k_cloud_signed_string (p, 3);
  assert_string_equal (s, "apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg"
                       "&command=listusers&response=json");
  free (s);
  expect (p, 3, CLOUD_ALG_SHA1, "TTpdDq/7j/J58XCRHomKoQXEQds=");
  expect (p, 3, CLOUD_ALG_SHA256, "4i30iLkIDD7+oVZsOl7hnZvotEubcEH2trgP72jw9ig=");
}

static void
test_v1 (void **state)
{
  (void) state;
  struct v2k_cloud_param p[] = { { "command", "listZones" }, { "apiKey", KEY }, { "response", "json" } };
  expect (p, 3, CLOUD_ALG_SHA1, "HmSwFbyOmNCn2FB58UXRauTAI3A=");
  expect (p, 3, CLOUD_ALG_SHA256, "GoE6/bWtmTZPpISp/KSdtHyeBXto4RlH3LPxu3P9tGo=");
  expect (p, 3, CLOUD_ALG_SHA512,
          "g0AZdhw81b1D5uhdbCQIyUhbDf9TO4oLpYdDXa/KZL20HaO7VrRKWmVhHlVheLD6ItrnNRBK5frdt3cyQOoduA==");
}

static void
test_v2_special_characters (void **state)
{
  (void) state;
  struct v2k_cloud_param p[] = {
    { "command", "deployVirtualMachineForVolume" }, { "apiKey", KEY }, { "response", "json" },
    { "zoneid", "d5551005-3372-43e5-8a2b-5742057bbabd" },
    { "serviceofferingid", "49b2a775-4dba-4b4b-8f92-554b111898bf" },
    { "volumeid", "c3720eec-b1d7-4752-8f15-3942ae0de034" }, { "name", "web-01" },
    { "displayname", "Web 01 (migrated)*~+/\xc3\xa9" }, { "startvm", "false" }, { "hypervisor", "KVM" },
    { "iptonetworklist[0].networkid", "fa2d6e6c-0003-4ab0-92a2-e3e41c9ccbac" },
    { "iptonetworklist[0].mac", "00:50:56:aa:bb:01" },
    { "details[0].rootDiskController", "scsi" }, { "details[0].cpuNumber", "2" },
  };
  size_t n = sizeof p / sizeof p[0];
  char *s = v2k_cloud_signed_string (p, n);
  assert_non_null (strstr (s, "displayname=web%2001%20%28migrated%29*%7e%2b%2f%c3%a9"));
  assert_non_null (strstr (s, "iptonetworklist[0].mac=00%3a50%3a56%3aaa%3abb%3a01"));
  free (s);
  expect (p, n, CLOUD_ALG_SHA1, "11XIMQnJAgWZkks/NX12iz6IYSo=");
  expect (p, n, CLOUD_ALG_SHA256, "12XC9iYVcJHfXkIMPzDIGPCYVF0js6sOkeYsPW7OgaU=");
  expect (p, n, CLOUD_ALG_SHA512,
          "jqLn4RvP9WSfqOxjsGa2nC75QrowsC86cMIwJqVBzBJzpCK4A3g0kK93WQ7VRC8pLv7s03oGiRgWNXKwpswNqQ==");
}

static void
test_v3_expires (void **state)
{
  (void) state;
  struct v2k_cloud_param p[] = {
    { "command", "queryAsyncJobResult" }, { "apiKey", KEY }, { "response", "json" },
    { "jobid", "74bbb422-fb74-47ac-a22a-ad86a7831d3f" }, { "signatureversion", "3" },
    { "expires", "2026-11-26T12:00:00+0000" },
  };
  char *s = v2k_cloud_signed_string (p, 6);
  assert_non_null (strstr (s, "&expires=2026-11-26t12%3a00%3a00%2b0000&"));
  free (s);
  expect (p, 6, CLOUD_ALG_SHA1, "wo3of2q/0G4eLRf2SpweZhiTTN0=");
  expect (p, 6, CLOUD_ALG_SHA256, "6pYLmM1cK+u1rMDctFz8cVLngNNd8fUgProE8cLddD4=");
  expect (p, 6, CLOUD_ALG_SHA512,
          "tcXKJYu0wlWyIgo5XCE8fIDl2GzJp4p+YH0M/laWQTlC0YQbMbX/aA+Vajb3Os7Cit3UnHdtQ7PUR3431z4frw==");
}

static void
test_encode (void **state)
{
  (void) state;
  char *e = v2k_cloud_encode ("a b(c)!'~*:/+,[]@\xc3\xa9");
  assert_string_equal (e, "a%20b%28c%29%21%27%7E*%3A%2F%2B%2C%5B%5D%40%C3%A9");
  free (e);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_v0_guide),
    cmocka_unit_test (test_v1),
    cmocka_unit_test (test_v2_special_characters),
    cmocka_unit_test (test_v3_expires),
    cmocka_unit_test (test_encode),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
