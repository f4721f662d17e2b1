#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "task.h"
#include "propcoll.h"
#include "../util/fsutil.h"

char *
v2k_task_from_response (xmlNode *resp)
{
  return v2k_xml_child_text (resp, "returnval");
}

int
v2k_task_wait (struct v2k_soap *s, const char *task, const char *what, int timeout,
               v2k_task_progress_fn progress, void *opaque, char **result,
               struct v2k_fault *fault, struct v2k_error *err)
{
  static const char *const paths[] = { "info", NULL };
  double start = v2k_monotonic_seconds ();
  useconds_t delay = 100000;
  int last_percent = -1;
  if (fault)
    memset (fault, 0, sizeof *fault);
  for (;;) {
    struct v2k_pc_result res = { 0 };
    if (v2k_pc_get (s, "Task", task, paths, &res, err) == -1) {
      v2k_error_prefix (err, "%s: reading task %s", what, task);
      return -1;
    }
    xmlNode *info = res.nobjs ? v2k_pc_prop (&res.objs[0], "info") : NULL;
    char *state = v2k_xml_child_text (info, "state");
    if (!state) {
      v2k_pc_result_free (&res);
      v2k_error_set (err, V2K_EXIT_VSPHERE, "%s: task %s has no state", what, task);
      return -1;
    }
    if (strcmp (state, "success") == 0) {
      if (result)
        *result = v2k_xml_child_text (info, "result");
      free (state);
      v2k_pc_result_free (&res);
      return 0;
    }
    if (strcmp (state, "error") == 0) {
      struct v2k_fault f = { 0 };
      xmlNode *e = v2k_xml_child (info, "error");
      xmlNode *inner = v2k_xml_child (e, "fault");
      if (inner)
        v2k_fault_from_detail (inner, &f);
      else
        snprintf (f.name, sizeof f.name, "SystemError");
      char *msg = v2k_xml_child_text (e, "localizedMessage");
      snprintf (f.message, sizeof f.message, "%s", msg ? msg : "");
      free (msg);
      if (fault)
        *fault = f;
      v2k_fault_to_error (&f, what, err);
      v2k_error_prefix (err, "task %s failed", task);
      free (state);
      v2k_pc_result_free (&res);
      return -1;
    }
    int64_t percent = -1;
    if (strcmp (state, "running") == 0 && v2k_xml_child_int64 (info, "progress", &percent) == 0 &&
        percent != last_percent && progress) {
      progress (opaque, task, (int) percent);
      last_percent = (int) percent;
    }
    free (state);
    v2k_pc_result_free (&res);
    if (v2k_monotonic_seconds () - start > timeout) {
      v2k_error_set (err, V2K_EXIT_VSPHERE,
                     "%s: task %s did not finish within %d s; it may still be running on "
                     "vCenter: check it there before re-running", what, task, timeout);
      return -1;
    }
    usleep (delay);
    if (delay < 2000000)
      delay *= 2;
  }
}
