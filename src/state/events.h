/* events.log: JSON Lines, one event per line, appended with O_APPEND in a
 * single write so that concurrent writers never tear a line.
 * docs/events.md lists the events. */
#ifndef V2K_EVENTS_H
#define V2K_EVENTS_H

#include <jansson.h>
#include "../util/error.h"

#define V2K_EVENTS_FILE "events.log"

enum v2k_event_level { EV_INFO, EV_WARN, EV_ERROR };

struct v2k_events {
  const char *workdir;
  const char *run_id;
};

/* Appends one event. DETAIL is stolen (may be NULL); DISK may be NULL. */
int v2k_event (const struct v2k_events *ev, enum v2k_event_level level,
               const char *phase, const char *disk, const char *event,
               json_t *detail, struct v2k_error *err);

/* The last N events of <workdir>/events.log as a JSON array (oldest first).
 * A missing log is an empty array. Lines that are not JSON are skipped. */
json_t *v2k_events_tail (const char *workdir, size_t n, struct v2k_error *err);

#endif
