/* Named crash points for the crash-safety tests. When the environment
 * variable V2K_CRASHPOINT names a point ("NAME" or "NAME@N" for its Nth
 * hit), the process kills itself with SIGKILL there, as a power cut would.
 * Unset, a crash point costs one getenv. */
#ifndef V2K_CRASHPOINT_H
#define V2K_CRASHPOINT_H

void v2k_crashpoint (const char *name);

#endif
