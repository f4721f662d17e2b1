/* Waiting for vSphere tasks: queued, running (progress logged through a
 * callback), success with its result, or error with its fault; bounded by a
 * timeout. */
#ifndef V2K_VSPHERE_TASK_H
#define V2K_VSPHERE_TASK_H

#include "soap.h"

typedef void (*v2k_task_progress_fn) (void *opaque, const char *task, int percent);

/* Polls TASK until it ends or TIMEOUT seconds pass. On success *RESULT (may
 * be NULL) gets the text of info.result (a moref for CreateSnapshot_Task).
 * A task error becomes a vSphere fault error and v2k_task_last_fault-like
 * details land in FAULT (may be NULL). */
int v2k_task_wait (struct v2k_soap *s, const char *task, const char *what, int timeout,
                   v2k_task_progress_fn progress, void *opaque, char **result,
                   struct v2k_fault *fault, struct v2k_error *err);

/* Reads the task moref from a *_TaskResponse. */
char *v2k_task_from_response (xmlNode *resp);

#endif
