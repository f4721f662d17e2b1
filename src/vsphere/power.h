/* The VM's power: its state and VMware Tools' state, a guest shutdown
 * (ShutdownGuest, through VMware Tools), a hard power-off
 * (PowerOffVM_Task), and waiting until the VM is powered off. */
#ifndef V2K_VSPHERE_POWER_H
#define V2K_VSPHERE_POWER_H

#include <signal.h>
#include <stdbool.h>
#include "soap.h"

struct v2k_power {
  char *state;           /* runtime.powerState: poweredOn, poweredOff, suspended */
  char *tools_running;   /* guest.toolsRunningStatus: guestToolsRunning, … */
  char *tools_status;    /* guest.toolsStatus: toolsOk, toolsNotInstalled, … */
};

int v2k_power_read (struct v2k_soap *s, const char *vm, struct v2k_power *p,
                    struct v2k_error *err);
void v2k_power_free (struct v2k_power *p);
bool v2k_power_is_off (const struct v2k_power *p);

/* Asks the guest OS to shut down. Refused, with the reason, when VMware
 * Tools are not running in the guest. */
int v2k_power_shutdown_guest (struct v2k_soap *s, const char *vm, const struct v2k_power *p,
                              struct v2k_error *err);
/* Powers the VM off at once and waits for the task. */
int v2k_power_off (struct v2k_soap *s, const char *vm, int timeout, struct v2k_error *err);
/* Polls until the VM is powered off: 0 when it is, 1 after TIMEOUT seconds
 * or when *STOP is set, -1 on an error. */
int v2k_power_wait_off (struct v2k_soap *s, const char *vm, int timeout,
                        volatile sig_atomic_t *stop, struct v2k_error *err);

#endif
