/* The ABLESTACK cloud (Mold) / CloudStack API client: signed POSTs
 * (signatureversion 3 with expires), the <command>response envelope, error
 * objects, async jobs and pagination. Read-only calls are retried on
 * transport errors and 429/502/503; mutating calls never are (the caller
 * checks the state instead). Keys are never logged. */
#ifndef V2K_CLOUD_CLIENT_H
#define V2K_CLOUD_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <jansson.h>
#include "sign.h"
#include "../util/error.h"

struct v2k_cloud_opts {
  const char *endpoint;     /* http(s)://host:8080/client/api */
  const char *apikey;
  const char *secretkey;
  int alg;                  /* enum v2k_cloud_alg, or -1: probe with listApis */
  const char *ca_file;
  bool insecure;
  long timeout;             /* seconds per request (default 120) */
};

struct v2k_cloud;

struct v2k_cloud *v2k_cloud_open (const struct v2k_cloud_opts *o, struct v2k_error *err);
void v2k_cloud_close (struct v2k_cloud *c);
/* The algorithm in use (after a probe). */
int v2k_cloud_alg (const struct v2k_cloud *c);
/* Probes listApis with the algorithms, HINT (a v2k_cloud_alg) first. */
int v2k_cloud_probe (struct v2k_cloud *c, int hint, struct v2k_error *err);

/* Calls COMMAND; *OUT (to json_decref) is the object inside
 * "<command>response". Empty values are not sent. */
int v2k_cloud_call (struct v2k_cloud *c, const char *command, const struct v2k_cloud_param *p,
                    size_t n, bool mutating, json_t **out, struct v2k_error *err);
/* Every object of a list command (all pages), as a JSON array in *OUT. */
int v2k_cloud_list (struct v2k_cloud *c, const char *command, const char *objname,
                    const struct v2k_cloud_param *p, size_t n, json_t **out, struct v2k_error *err);
/* Polls JOBID until it ends or TIMEOUT seconds pass (or *STOP); *RESULT gets
 * its jobresult on success. A failed job is an error with its errortext. */
int v2k_cloud_job_wait (struct v2k_cloud *c, const char *jobid, int timeout,
                        volatile sig_atomic_t *stop, json_t **result, struct v2k_error *err);

/* Whether the last call failed in transport, so that its outcome (for a
 * change: done or not) is unknown. */
bool v2k_cloud_transport_failed (const struct v2k_cloud *c);

/* The apikey shown in messages: its first 6 characters. */
const char *v2k_cloud_key_hint (const struct v2k_cloud *c);

#endif
