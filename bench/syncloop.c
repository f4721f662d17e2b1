/* The baseline for `make bench`: the incumbent tool's method of applying
 * changed areas, one coalesced area at a time, each read then written
 * synchronously (libnbd's blocking calls, one connection each side).
 *   syncloop SRC-URI DST-URI AREAS-FILE   (lines: "start length") */
#include <stdio.h>
#include <stdlib.h>
#include <libnbd.h>

int
main (int argc, char **argv)
{
  if (argc != 4) {
    fprintf (stderr, "usage: syncloop SRC-URI DST-URI AREAS-FILE\n");
    return 2;
  }
  struct nbd_handle *src = nbd_create (), *dst = nbd_create ();
  if (!src || !dst || nbd_connect_uri (src, argv[1]) == -1 || nbd_connect_uri (dst, argv[2]) == -1) {
    fprintf (stderr, "syncloop: %s\n", nbd_get_error ());
    return 1;
  }
  FILE *fp = fopen (argv[3], "r");
  if (!fp) {
    perror (argv[3]);
    return 1;
  }
  const size_t chunk = 4 << 20;   /* the incumbent copies in 4 MiB chunks */
  char *buf = malloc (chunk);
  if (!buf) {
    perror ("malloc");
    return 1;
  }
  long long start, length;
  int got;
  while ((got = fscanf (fp, "%lld %lld", &start, &length)) == 2) {
    if (start < 0 || length < 0) {
      fprintf (stderr, "syncloop: %s: a negative area\n", argv[3]);
      return 1;
    }
    while (length > 0) {
      size_t n = length > (long long) chunk ? chunk : (size_t) length;
      if (nbd_pread (src, buf, n, (uint64_t) start, 0) == -1 ||
          nbd_pwrite (dst, buf, n, (uint64_t) start, 0) == -1) {
        fprintf (stderr, "syncloop: %s\n", nbd_get_error ());
        return 1;
      }
      start += (long long) n;
      length -= (long long) n;
    }
  }
  if (got != EOF || ferror (fp)) {
    fprintf (stderr, "syncloop: %s: not a list of \"start length\" lines\n", argv[3]);
    return 1;
  }
  if (nbd_flush (dst, 0) == -1) {
    fprintf (stderr, "syncloop: %s\n", nbd_get_error ());
    return 1;
  }
  fclose (fp);
  free (buf);
  nbd_shutdown (src, 0);
  nbd_shutdown (dst, 0);
  nbd_close (src);
  nbd_close (dst);
  return 0;
}
