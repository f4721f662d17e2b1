/* Runs a libFuzzer harness over files without libFuzzer: the seed corpus
 * and every crasher found so far, as a regression test in make check.
 * Prints TAP, one line per file. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int n;

static void
run_file (const char *path)
{
  FILE *fp = fopen (path, "rb");
  if (!fp) {
    printf ("not ok %d - %s: cannot open\n", ++n, path);
    return;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0, r;
  uint8_t chunk[65536];
  while ((r = fread (chunk, 1, sizeof chunk, fp)) > 0) {
    if (len + r > cap) {
      cap = (len + r) * 2;
      buf = realloc (buf, cap);
    }
    memcpy (buf + len, chunk, r);
    len += r;
  }
  fclose (fp);
  LLVMFuzzerTestOneInput (buf ? buf : (const uint8_t *) "", len);
  free (buf);
  printf ("ok %d - %s\n", ++n, path);
  fflush (stdout);
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat (argv[i], &st) == 0 && S_ISDIR (st.st_mode)) {
      DIR *d = opendir (argv[i]);
      struct dirent *e;
      while (d && (e = readdir (d))) {
        if (e->d_name[0] == '.')
          continue;
        char p[4096];
        snprintf (p, sizeof p, "%s/%s", argv[i], e->d_name);
        run_file (p);
      }
      if (d)
        closedir (d);
    }
    else
      run_file (argv[i]);
  }
  printf ("1..%d\n", n);
  return 0;
}
