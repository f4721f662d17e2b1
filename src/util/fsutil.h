/* File helpers with the durability rules the workdir depends on. */
#ifndef V2K_FSUTIL_H
#define V2K_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>
#include "error.h"

/* Replaces PATH with DATA atomically: a temp file in the same directory is
 * written, fsynced and renamed over PATH, then the directory is fsynced.
 * A reader sees the old or the new content, never a mix, even after a crash.
 * Crash points: atomic-write:tmp, atomic-write:fsync, atomic-write:rename. */
int v2k_write_file_atomic (const char *path, const void *data, size_t len,
                           mode_t mode, struct v2k_error *err);

/* Reads a whole regular file (refusing symlinks and files over MAX bytes)
 * into a NUL-terminated buffer. Errors use CODE. */
char *v2k_read_file (const char *path, size_t max, size_t *len_out,
                     int code, struct v2k_error *err);

/* Reads a whole stream (a pipe, stdin) of at most MAX bytes. */
char *v2k_read_stream (int fd, size_t max, size_t *len_out, int code, struct v2k_error *err);

int v2k_fsync_dir (const char *dir, struct v2k_error *err);

/* mkdir -p with MODE for each directory created. */
int v2k_mkdir_p (const char *path, mode_t mode, struct v2k_error *err);

/* RFC 3339 UTC with milliseconds: 2026-11-26T12:33:18.123Z. */
void v2k_now_rfc3339 (char buf[32]);
/* Seconds on the monotonic clock, for measuring durations. */
double v2k_monotonic_seconds (void);
/* Wall-clock seconds, with sub-second precision. */
double v2k_now_seconds (void);

#endif
