#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "signals.h"

volatile sig_atomic_t v2k_stop_requested;

static void
on_signal (int sig)
{
  if (v2k_stop_requested) {
    signal (sig, SIG_DFL);
    raise (sig);
    return;
  }
  v2k_stop_requested = 1;
}

void
v2k_signals_install (void)
{
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
}
