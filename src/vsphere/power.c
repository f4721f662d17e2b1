#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "power.h"
#include "propcoll.h"
#include "task.h"
#include "../util/cleanup.h"
#include "../util/fsutil.h"

int
v2k_power_read (struct v2k_soap *s, const char *vm, struct v2k_power *p, struct v2k_error *err)
{
  static const char *const paths[] = { "runtime.powerState", "guest.toolsRunningStatus",
                                       "guest.toolsStatus", NULL };
  struct v2k_pc_result res = { 0 };
  memset (p, 0, sizeof *p);
  if (v2k_pc_get (s, "VirtualMachine", vm, paths, &res, err) == -1)
    return -1;
  if (res.nobjs) {
    p->state = v2k_pc_prop_text (&res.objs[0], "runtime.powerState");
    p->tools_running = v2k_pc_prop_text (&res.objs[0], "guest.toolsRunningStatus");
    p->tools_status = v2k_pc_prop_text (&res.objs[0], "guest.toolsStatus");
  }
  v2k_pc_result_free (&res);
  if (!p->state) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "vCenter reported no power state for %s", vm);
    v2k_power_free (p);
    return -1;
  }
  return 0;
}

void
v2k_power_free (struct v2k_power *p)
{
  free (p->state);
  free (p->tools_running);
  free (p->tools_status);
  memset (p, 0, sizeof *p);
}

bool
v2k_power_is_off (const struct v2k_power *p)
{
  return p->state && strcmp (p->state, "poweredOff") == 0;
}

int
v2k_power_shutdown_guest (struct v2k_soap *s, const char *vm, const struct v2k_power *p,
                          struct v2k_error *err)
{
  /* vCenter would answer ToolsUnavailable; saying why is more useful. */
  if (p->tools_status && strcmp (p->tools_status, "toolsNotInstalled") == 0) {
    v2k_error_set (err, V2K_EXIT_VSPHERE,
                   "VM %s has no VMware Tools, so it cannot be shut down from the guest: "
                   "shut it down yourself and use --shutdown manual, or use --shutdown poweroff", vm);
    return -1;
  }
  if (p->tools_running && strcmp (p->tools_running, "guestToolsRunning") != 0) {
    v2k_error_set (err, V2K_EXIT_VSPHERE,
                   "VMware Tools are not running in VM %s (%s), so it cannot be shut down from "
                   "the guest: shut it down yourself and use --shutdown manual, or use "
                   "--shutdown poweroff", vm, p->tools_running);
    return -1;
  }
  xmlDoc *doc;
  xmlNode *resp;
  if (v2k_soap_call (s, "ShutdownGuest", "VirtualMachine", vm, "", true, &doc, &resp, err) == -1)
    return -1;
  xmlFreeDoc (doc);
  return 0;
}

int
v2k_power_off (struct v2k_soap *s, const char *vm, int timeout, struct v2k_error *err)
{
  xmlDoc *doc;
  xmlNode *resp;
  if (v2k_soap_call (s, "PowerOffVM_Task", "VirtualMachine", vm, "", true, &doc, &resp, err) == -1)
    return -1;
  CLEANUP_FREE char *task = v2k_task_from_response (resp);
  xmlFreeDoc (doc);
  return v2k_task_wait (s, task, "powering off", timeout, NULL, NULL, NULL, NULL, err);
}

int
v2k_power_wait_off (struct v2k_soap *s, const char *vm, int timeout, volatile sig_atomic_t *stop,
                    struct v2k_error *err)
{
  double deadline = v2k_monotonic_seconds () + timeout;
  for (;;) {
    struct v2k_power p;
    if (v2k_power_read (s, vm, &p, err) == -1)
      return -1;
    bool off = v2k_power_is_off (&p);
    v2k_power_free (&p);
    if (off)
      return 0;
    if (v2k_monotonic_seconds () >= deadline || (stop && *stop))
      return 1;
    struct timespec nap = { 0, 500 * 1000 * 1000 };
    nanosleep (&nap, NULL);
  }
}
