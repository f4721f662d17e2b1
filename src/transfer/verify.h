/* verify: reads a source and a target side by side through the same
 * endpoints as the copy, and compares SHA-256 digests of each chunk. The
 * whole disk, or N random chunks. Mismatches are reported as ranges. */
#ifndef V2K_VERIFY_H
#define V2K_VERIFY_H

#include <signal.h>
#include <stdint.h>
#include "endpoint.h"

struct v2k_verify_result {
  int64_t bytes_checked;
  int64_t chunks;
  size_t nmismatch;            /* chunks that differ */
  struct v2k_extent first[8];  /* the first mismatching ranges */
  size_t nfirst;
};

/* Compares [0, SIZE) in chunks of CHUNK bytes, or, with SAMPLES > 0, that
 * many chunks chosen at random (seeded by SEED). */
int v2k_verify (struct v2k_endpoint *src, struct v2k_endpoint *dst, int64_t size, size_t chunk,
                int64_t samples, unsigned seed, volatile sig_atomic_t *stop,
                struct v2k_verify_result *res, struct v2k_error *err);

#endif
