/* The copying engine: moves the listed extents of a source endpoint into a
 * target endpoint with bounded memory and many requests in flight, writes
 * zero buffers as zero operations, retries failed requests a bounded number
 * of times, flushes the target, and reports progress and flushed
 * checkpoints. */
#ifndef V2K_COPY_H
#define V2K_COPY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "endpoint.h"
#include "extents.h"

struct v2k_copy_opts {
  size_t request_size;        /* bytes per request (default 1 MiB) */
  size_t max_inflight;        /* bytes in flight at most (default 64 MiB) */
  int64_t coalesce_gap;       /* join extents closer than this (default 64 KiB) */
  bool target_is_zero;        /* the target reads zeros where not yet written:
                                 zero buffers need no operation at all */
  bool source_zeros;          /* ask the source which parts of the areas read
                                 as zeros, and zero those without reading */
  int retries;                /* per request, with growing pauses (0.1 s, 0.2 s, …) */
  double checkpoint_seconds;  /* flush and report a checkpoint this often (0: never) */
  /* Every extent below OFFSET is written and flushed. */
  void (*checkpoint) (void *opaque, int64_t offset, int64_t bytes_done);
  /* At most every 0.25 s and at the end. */
  void (*progress) (void *opaque, int64_t bytes_done, int64_t bytes_total, double rate);
  void *opaque;
  volatile sig_atomic_t *stop;  /* set by a signal handler: stop at a safe point */
};

struct v2k_copy_stats {
  int64_t bytes_total;        /* the bytes of the (coalesced) extents */
  int64_t bytes_copied;       /* sent as data */
  int64_t bytes_zeroed;       /* sent as zero operations */
  int64_t bytes_skipped;      /* zeros on a target that reads zeros already */
  int64_t bytes_unread;       /* zeros known from the source's block status,
                                 never read (part of zeroed or skipped) */
  int64_t requests;
  int64_t retried;
  double seconds;
};

/* Joins extents less than GAP apart (the gap is copied too). */
int v2k_extents_coalesce (v2k_extents *v, int64_t gap);
/* Drops everything below OFFSET (clipping the extent that straddles it). */
void v2k_extents_from (v2k_extents *v, int64_t offset);

/* Copies AREAS from SRC to DST, then flushes DST. On failure the error names
 * the disk offset and the server's words; interrupted copies return -1 with
 * V2K_EXIT_INTERRUPTED. */
int v2k_copy (struct v2k_endpoint *src, struct v2k_endpoint *dst, const v2k_extents *areas,
              const struct v2k_copy_opts *opts, struct v2k_copy_stats *stats,
              struct v2k_error *err);

#endif
