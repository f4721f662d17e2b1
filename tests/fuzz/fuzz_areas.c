/* libFuzzer harness: the areas JSON of copy --areas, with and without a
 * disk size. */
#include <stdint.h>
#include "transfer/areas.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct v2k_error err = { 0 };
  v2k_extents a = empty_vector;
  v2k_areas_parse ((const char *) data, size, "fuzz", 1LL << 30, &a, &err);
  v2k_extents_reset (&a);
  v2k_areas_parse ((const char *) data, size, "fuzz", -1, &a, &err);
  v2k_extents_reset (&a);
  return 0;
}
