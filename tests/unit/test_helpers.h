/* Shared helpers for the unit tests. */
#ifndef V2K_TEST_HELPERS_H
#define V2K_TEST_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

static inline char *
fixture_path (const char *rel)
{
  char *p;
  if (asprintf (&p, "%s/tests/fixtures/%s", V2K_SOURCE_DIR, rel) < 0)
    abort ();
  return p;
}

static inline char *
slurp (const char *path)
{
  FILE *fp = fopen (path, "r");
  assert_non_null (fp);
  fseek (fp, 0, SEEK_END);
  long n = ftell (fp);
  rewind (fp);
  char *buf = malloc ((size_t) n + 1);
  assert_int_equal (fread (buf, 1, (size_t) n, fp), (size_t) n);
  buf[n] = '\0';
  fclose (fp);
  return buf;
}

/* A fresh temporary directory; removed by rm_rf. */
static inline char *
make_tmpdir (void)
{
  char *t = strdup ("/tmp/v2k-unit-XXXXXX");
  assert_non_null (mkdtemp (t));
  return t;
}

static inline void
rm_rf (const char *dir)
{
  pid_t pid = fork ();
  if (pid == 0) {
    execlp ("rm", "rm", "-rf", "--", dir, (char *) NULL);
    _exit (127);
  }
  int st;
  waitpid (pid, &st, 0);
}

static inline void
copy_fixture_workdir (const char *name, const char *dst)
{
  char *src = NULL;
  if (asprintf (&src, "%s/tests/fixtures/workdirs/%s/.", V2K_SOURCE_DIR, name) < 0)
    abort ();
  pid_t pid = fork ();
  if (pid == 0) {
    execlp ("cp", "cp", "-a", "--", src, dst, (char *) NULL);
    _exit (127);
  }
  int st;
  waitpid (pid, &st, 0);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  free (src);
}

#endif
