/* Workdir state across processes: atomic saves under injected crashes,
 * the lock, and concurrent event appends. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "test_helpers.h"
#include <jansson.h>

#include "state/events.h"
#include "state/lock.h"
#include "state/manifest.h"
#include "state/workdir.h"

static struct v2k_manifest *
load_fixture (void)
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

/* Saves a changed manifest in a child that dies at POINT; the manifest on
 * disk must then be exactly the old one or exactly the new one. */
static void
crash_during_save (const char *point, bool expect_new)
{
  char *dir = make_tmpdir ();
  struct v2k_error err = { 0 };
  struct v2k_manifest *m = load_fixture ();
  assert_int_equal (v2k_manifest_save (m, dir, &err), 0);
  char *old_text = v2k_manifest_serialize (m);
  m->incr_rounds = 7;
  free (m->source.vm.power_state);
  m->source.vm.power_state = strdup ("poweredOff");
  char *new_text = v2k_manifest_serialize (m);

  pid_t pid = fork ();
  if (pid == 0) {
    setenv ("V2K_CRASHPOINT", point, 1);
    v2k_manifest_save (m, dir, &err);
    _exit (0);  /* not reached when the crash point fires */
  }
  int st;
  waitpid (pid, &st, 0);
  assert_true (WIFSIGNALED (st) && WTERMSIG (st) == SIGKILL);

  struct v2k_manifest *got = v2k_manifest_load (dir, &err);
  if (!got)
    fail_msg ("after a crash at %s: %s", point, err.message);
  char *got_text = v2k_manifest_serialize (got);
  assert_string_equal (got_text, expect_new ? new_text : old_text);

  char path[512];
  struct stat sb;
  snprintf (path, sizeof path, "%s/manifest.json", dir);
  assert_int_equal (stat (path, &sb), 0);
  assert_int_equal (sb.st_mode & 0777, 0600);

  /* A later save succeeds whatever the crash left behind. */
  assert_int_equal (v2k_manifest_save (m, dir, &err), 0);
  free (got_text);
  v2k_manifest_free (got);
  free (old_text);
  free (new_text);
  v2k_manifest_free (m);
  rm_rf (dir);
  free (dir);
}

static void
test_atomic_save_crashes (void **state)
{
  (void) state;
  crash_during_save ("atomic-write:tmp", false);
  crash_during_save ("atomic-write:fsync", false);
  crash_during_save ("atomic-write:rename", true);
}

static void
test_lock_two_processes (void **state)
{
  (void) state;
  char *dir = make_tmpdir ();
  struct v2k_error err = { 0 };
  struct v2k_lock lock = { -1 };
  struct v2k_lock_holder holder;

  assert_int_equal (v2k_lock_probe (dir, &holder), 0);
  assert_int_equal (v2k_lock_acquire (dir, "sync", &lock, &err), 0);
  assert_int_equal (v2k_lock_probe (dir, &holder), 1);
  assert_int_equal (holder.pid, getpid ());
  assert_string_equal (holder.command, "sync");

  int pipefd[2];
  assert_int_equal (pipe (pipefd), 0);
  pid_t pid = fork ();
  if (pid == 0) {
    struct v2k_lock l2 = { -1 };
    struct v2k_error e2 = { 0 };
    int rc = v2k_lock_acquire (dir, "cbt", &l2, &e2);
    if (write (pipefd[1], e2.message, strlen (e2.message) + 1) < 0)
      _exit (3);
    _exit (rc == -1 && e2.code == V2K_EXIT_LOCKED ? 0 : 1);
  }
  int st;
  waitpid (pid, &st, 0);
  char msg[2048] = "";
  assert_true (read (pipefd[0], msg, sizeof msg - 1) > 0);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  char want[128];
  snprintf (want, sizeof want, "is in use by pid %ld (ablestack_v2k sync, since ", (long) getpid ());
  if (!strstr (msg, want))
    fail_msg ("refusal: %s", msg);

  /* Released: another process gets it, and the probe sees it free. */
  v2k_lock_release (&lock);
  assert_int_equal (v2k_lock_probe (dir, &holder), 0);
  pid = fork ();
  if (pid == 0) {
    struct v2k_lock l2 = { -1 };
    struct v2k_error e2 = { 0 };
    _exit (v2k_lock_acquire (dir, "cbt", &l2, &e2) == 0 ? 0 : 1);
  }
  waitpid (pid, &st, 0);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  close (pipefd[0]);
  close (pipefd[1]);
  rm_rf (dir);
  free (dir);
}

/* Two processes append long events at once; every line must parse. */
static void
test_events_two_writers (void **state)
{
  (void) state;
  char *dir = make_tmpdir ();
  enum { PER_WRITER = 1500 };
  pid_t pids[2];
  for (int w = 0; w < 2; w++) {
    pids[w] = fork ();
    if (pids[w] == 0) {
      struct v2k_events ev = { .workdir = dir, .run_id = "r1" };
      struct v2k_error err = { 0 };
      char *pad = malloc (9000);
      for (int i = 0; i < PER_WRITER; i++) {
        /* Lines from 100 bytes to over 8 KiB, past PIPE_BUF. */
        size_t n = (size_t) (i * 37 % 9000);
        memset (pad, 'a' + w, n);
        pad[n] = '\0';
        if (v2k_event (&ev, EV_INFO, "sync_base", w ? "sata0:0" : "scsi0:0", "test.event",
                       json_pack ("{s:i, s:i, s:s}", "writer", w, "i", i, "pad", pad), &err) == -1)
          _exit (1);
      }
      free (pad);
      _exit (0);
    }
  }
  for (int w = 0; w < 2; w++) {
    int st;
    waitpid (pids[w], &st, 0);
    assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  }
  char path[512];
  snprintf (path, sizeof path, "%s/events.log", dir);
  char *text = slurp (path);
  int seen[2] = { 0, 0 }, next[2] = { 0, 0 };
  for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n")) {
    json_error_t jerr;
    json_t *ev = json_loads (line, 0, &jerr);
    if (!ev)
      fail_msg ("torn line: %.80s… (%s)", line, jerr.text);
    int w = (int) json_integer_value (json_object_get (json_object_get (ev, "detail"), "writer"));
    int i = (int) json_integer_value (json_object_get (json_object_get (ev, "detail"), "i"));
    assert_int_equal (i, next[w]);  /* each writer's events stay in order */
    next[w]++;
    seen[w]++;
    assert_string_equal (json_string_value (json_object_get (ev, "level")), "info");
    assert_non_null (json_object_get (ev, "ts"));
    json_decref (ev);
  }
  assert_int_equal (seen[0], PER_WRITER);
  assert_int_equal (seen[1], PER_WRITER);
  struct stat sb;
  assert_int_equal (stat (path, &sb), 0);
  assert_int_equal (sb.st_mode & 0777, 0600);

  /* The tail is the last N events, oldest first. */
  struct v2k_error err = { 0 };
  json_t *tail = v2k_events_tail (dir, 20, &err);
  assert_int_equal (json_array_size (tail), 20);
  json_decref (tail);
  free (text);
  rm_rf (dir);
  free (dir);
}

static void
test_events_tail_order (void **state)
{
  (void) state;
  char *dir = make_tmpdir ();
  struct v2k_events ev = { .workdir = dir, .run_id = "r2" };
  struct v2k_error err = { 0 };
  json_t *empty = v2k_events_tail (dir, 5, &err);
  assert_int_equal (json_array_size (empty), 0);
  json_decref (empty);
  for (int i = 0; i < 50; i++)
    assert_int_equal (v2k_event (&ev, EV_WARN, "init", NULL, "n", json_pack ("{s:i}", "i", i), &err), 0);
  json_t *tail = v2k_events_tail (dir, 5, &err);
  assert_int_equal (json_array_size (tail), 5);
  for (int i = 0; i < 5; i++) {
    json_t *e = json_array_get (tail, (size_t) i);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (e, "detail"), "i")), 45 + i);
    assert_null (json_object_get (e, "disk"));
  }
  json_decref (tail);
  rm_rf (dir);
  free (dir);
}

static void
test_workdir_create (void **state)
{
  (void) state;
  char *root = make_tmpdir ();
  char run_id[32];
  v2k_run_id_new (run_id);
  assert_int_equal (strlen (run_id), 24);
  struct v2k_error err = { 0 };
  char *wd = v2k_workdir_create (root, "../evil name/$(x)", run_id, &err);
  assert_non_null (wd);
  char want[512];
  snprintf (want, sizeof want, "%s/_._evil_name___x_/%s", root, run_id);
  assert_string_equal (wd, want);
  struct stat sb;
  assert_int_equal (stat (wd, &sb), 0);
  assert_int_equal (sb.st_mode & 0777, 0700);
  assert_int_equal (v2k_workdir_check (wd, &err), -1);
  assert_non_null (strstr (err.message, "has no manifest.json"));
  free (wd);
  rm_rf (root);
  free (root);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_atomic_save_crashes),
    cmocka_unit_test (test_lock_two_processes),
    cmocka_unit_test (test_events_two_writers),
    cmocka_unit_test (test_events_tail_order),
    cmocka_unit_test (test_workdir_create),
  };
  return cmocka_run_group_tests_name ("state", tests, NULL, NULL);
}
