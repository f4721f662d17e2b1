/* SIGINT and SIGTERM ask the running command to stop at its next safe point
 * (after a flushed checkpoint); a second signal of either kind kills it. */
#ifndef V2K_SIGNALS_H
#define V2K_SIGNALS_H

#include <signal.h>

extern volatile sig_atomic_t v2k_stop_requested;
void v2k_signals_install (void);

#endif
