/* libFuzzer harness: manifest.json text, loaded and validated, then
 * serialized again. */
#include <stdint.h>
#include <stdlib.h>
#include "state/manifest.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct v2k_error err = { 0 };
  struct v2k_manifest *m = v2k_manifest_parse ((const char *) data, size, "fuzz", &err);
  if (m) {
    free (v2k_manifest_serialize (m));
    v2k_manifest_free (m);
  }
  return 0;
}
