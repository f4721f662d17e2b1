/* What a workdir command holds while it runs: the workdir lock, the loaded
 * manifest, the event log and (for vSphere commands) a logged-in session
 * checked to reach the same vCenter and VM that init recorded. */
#ifndef V2K_CMD_SESSION_H
#define V2K_CMD_SESSION_H

#include <stdbool.h>
#include "cmd.h"
#include "../state/events.h"
#include "../state/lock.h"
#include "../state/manifest.h"
#include "../vsphere/connopts.h"
#include "../vsphere/soap.h"

struct v2k_session {
  const char *workdir;
  const char *command;
  bool locked;
  struct v2k_lock lock;
  struct v2k_manifest *m;
  struct v2k_events ev;
  struct v2k_soap *soap;
  int phase;                    /* for error records: the step being run */
  int stale_helpers;            /* helpers of a killed command, stopped at open */
};

/* Opens G->workdir: checks it, takes the lock when LOCK, loads the manifest.
 * With CONN (may be NULL) it also connects and verifies vCenter and VM. */
int v2k_session_open (struct v2k_global *g, const char *command, bool lock,
                      struct v2k_conn_args *conn, struct v2k_session *s, struct v2k_error *err);
/* Connects with CONN and checks identity (for commands that connect later). */
int v2k_session_connect (struct v2k_session *s, struct v2k_conn_args *conn, struct v2k_error *err);
/* Saves the manifest atomically. */
int v2k_session_save (struct v2k_session *s, struct v2k_error *err);
/* Marks step PHASE started or finished in the manifest (not saved). */
void v2k_session_step (struct v2k_session *s, int phase, int state);
/* Ends the session. When RC is non-zero and the lock is held, the error is
 * recorded as last_error (manifest) and as an error event first. */
void v2k_session_close (struct v2k_session *s, int rc, const struct v2k_error *err);

/* Emits an event, ignoring failures to log (they must not fail a step that
 * succeeded); returns nothing. */
void v2k_session_event (struct v2k_session *s, enum v2k_event_level level, const char *disk,
                        const char *event, json_t *detail);

#endif
