/* libFuzzer harness: the size parser of every size and count option. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "util/units.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = malloc (size + 1);
  if (!s)
    return 0;
  memcpy (s, data, size);
  s[size] = '\0';
  struct v2k_error err = { 0 };
  int64_t v;
  if (v2k_parse_size ("--size", s, 0, INT64_MAX, &v, &err) == 0 && v < 0)
    abort ();
  if (v2k_parse_size ("--jobs", s, 1, 16, &v, &err) == 0 && (v < 1 || v > 16))
    abort ();
  free (s);
  return 0;
}
