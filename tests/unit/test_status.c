/* status --json against fixture workdirs in each state. */
#include <sys/wait.h>
#include "test_helpers.h"
#include <jansson.h>

#include "state/lock.h"
#include "state/status.h"

static json_t *
status_of (const char *fixture, size_t nevents, char **dir_out)
{
  char *dir = make_tmpdir ();
  copy_fixture_workdir (fixture, dir);
  struct v2k_error err = { 0 };
  json_t *s = v2k_status_build (dir, nevents, &err);
  if (!s)
    fail_msg ("status of %s: %s", fixture, err.message);
  if (dir_out)
    *dir_out = dir;
  else {
    rm_rf (dir);
    free (dir);
  }
  return s;
}

static const char *
str (json_t *o, const char *k)
{
  return json_string_value (json_object_get (o, k));
}

static void
test_idle (void **state)
{
  (void) state;
  json_t *s = status_of ("idle", 20, NULL);
  assert_string_equal (str (s, "schema"), "ablestack-v2k/status/v1");
  assert_string_equal (str (s, "state"), "idle");
  assert_string_equal (str (s, "phase"), "init");
  assert_string_equal (str (s, "phase_state"), "done");
  assert_true (json_is_null (json_object_get (s, "pid")));
  assert_string_equal (str (json_object_get (s, "vm"), "name"), "web01");
  assert_int_equal (json_array_size (json_object_get (s, "disks")), 2);
  assert_int_equal (json_array_size (json_object_get (s, "events")), 1);
  assert_true (json_is_null (json_object_get (s, "last_error")));
  json_decref (s);
}

static void
test_syncing_progress (void **state)
{
  (void) state;
  json_t *s = status_of ("syncing", 5, NULL);
  assert_string_equal (str (s, "phase"), "sync_base");
  assert_string_equal (str (s, "state"), "idle");  /* no process holds the lock */
  json_t *d0 = json_array_get (json_object_get (s, "disks"), 0);
  assert_string_equal (str (d0, "id"), "scsi0:0");
  assert_string_equal (str (d0, "sync"), "base");
  assert_string_equal (str (d0, "state"), "running");
  assert_int_equal (json_integer_value (json_object_get (d0, "bytes_total")), 40000000);
  assert_int_equal (json_integer_value (json_object_get (d0, "bytes_done")), 10000000);
  assert_int_equal (json_integer_value (json_object_get (d0, "rate_bps")), 10000000);
  /* No ETA while nothing runs. */
  assert_true (json_is_null (json_object_get (d0, "eta_seconds")));
  json_t *totals = json_object_get (s, "totals");
  assert_int_equal (json_integer_value (json_object_get (totals, "bytes_total")), 41048576);
  assert_int_equal (json_integer_value (json_object_get (totals, "bytes_done")), 11048576);
  json_t *events = json_object_get (s, "events");
  assert_int_equal (json_array_size (events), 5);
  assert_int_equal (json_integer_value (json_object_get (json_object_get (json_array_get (events, 4), "detail"), "bytes_done")), 29000);
  assert_int_equal (json_integer_value (json_object_get (s, "snapshots")), 1);
  json_decref (s);
}

static void
test_running_while_locked (void **state)
{
  (void) state;
  char *dir;
  json_t *s = status_of ("syncing", 0, &dir);
  json_decref (s);
  struct v2k_lock lock = { -1 };
  struct v2k_error err = { 0 };
  assert_int_equal (v2k_lock_acquire (dir, "sync", &lock, &err), 0);
  s = v2k_status_build (dir, 0, &err);
  assert_non_null (s);
  assert_string_equal (str (s, "state"), "running");
  assert_int_equal (json_integer_value (json_object_get (s, "pid")), getpid ());
  assert_string_equal (str (s, "command"), "sync");
  json_t *d0 = json_array_get (json_object_get (s, "disks"), 0);
  assert_int_equal (json_integer_value (json_object_get (d0, "eta_seconds")), 3);
  assert_int_equal (json_array_size (json_object_get (s, "events")), 0);
  json_decref (s);
  v2k_lock_release (&lock);
  rm_rf (dir);
  free (dir);
}

static void
test_failed_and_done (void **state)
{
  (void) state;
  json_t *s = status_of ("failed", 20, NULL);
  assert_string_equal (str (s, "state"), "failed");
  json_t *e = json_object_get (s, "last_error");
  assert_string_equal (str (e, "code"), "transfer");
  assert_non_null (strstr (str (e, "message"), "offset 8388608"));
  json_t *d0 = json_array_get (json_object_get (s, "disks"), 0);
  assert_string_equal (str (json_object_get (d0, "last_error"), "phase"), "sync_base");
  json_decref (s);

  s = status_of ("done", 20, NULL);
  assert_string_equal (str (s, "state"), "done");
  assert_string_equal (str (s, "phase"), "done");
  assert_int_equal (json_integer_value (json_object_get (s, "incr_rounds")), 3);
  json_decref (s);

  s = status_of ("empty-events", 20, NULL);
  assert_int_equal (json_array_size (json_object_get (s, "events")), 0);
  json_decref (s);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_idle),
    cmocka_unit_test (test_syncing_progress),
    cmocka_unit_test (test_running_while_locked),
    cmocka_unit_test (test_failed_and_done),
  };
  return cmocka_run_group_tests_name ("status", tests, NULL, NULL);
}
