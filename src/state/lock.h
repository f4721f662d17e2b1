/* The workdir lock: an exclusive flock on <workdir>/.lock held for the whole
 * run of every command that changes state. The file also names the holder
 * (pid, command, start time) so that a refused command can say who it is. */
#ifndef V2K_LOCK_H
#define V2K_LOCK_H

#include <stdbool.h>
#include "../util/error.h"

#define V2K_LOCK_FILE ".lock"

struct v2k_lock { int fd; };

struct v2k_lock_holder {
  long pid;
  char command[64];
  char since[32];
};

/* Takes the lock without waiting; if another process holds it, fails with
 * V2K_EXIT_LOCKED and a message naming the holder. */
int v2k_lock_acquire (const char *workdir, const char *command,
                      struct v2k_lock *lock, struct v2k_error *err);
void v2k_lock_release (struct v2k_lock *lock);

/* Tells, without taking it, whether the lock is held (from /proc/locks) and
 * by whom. Returns 1 if held, 0 if not, -1 if the lock file is unreadable. */
int v2k_lock_probe (const char *workdir, struct v2k_lock_holder *holder);

#endif
