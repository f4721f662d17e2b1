/* libFuzzer harness: a datastore path "[ds] dir/file.vmdk" resolved
 * through a datastore map; the result must stay inside the datastore. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "transfer/source.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = malloc (size + 1);
  if (!s)
    return 0;
  memcpy (s, data, size);
  s[size] = '\0';
  struct jm_kv map[] = { { (char *) "ds1", (char *) "/mnt/ds1" }, { (char *) "my ds", (char *) "/mnt/my ds" } };
  struct v2k_manifest m;
  memset (&m, 0, sizeof m);
  m.transport.datastore_map = map;
  m.transport.n_datastore_map = 2;
  struct v2k_error err = { 0 };
  char *p = v2k_source_local_path (&m, s, &err);
  if (p && strncmp (p, "/mnt/ds1/", 9) != 0 && strncmp (p, "/mnt/my ds/", 11) != 0)
    abort ();                   /* escaped its datastore */
  if (p && strstr (p, "/../"))
    abort ();
  free (p);
  free (s);
  return 0;
}
