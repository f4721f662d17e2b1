#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "client.h"
#include "../util/cleanup.h"
#include "../util/strbuf.h"

struct v2k_cloud {
  struct v2k_cloud_opts o;
  char *endpoint, *apikey, *secretkey, *ca_file;
  bool transport_failed;     /* the last call's outcome is unknown */
  CURL *curl;
  char key_hint[16];
};

struct v2k_cloud *
v2k_cloud_open (const struct v2k_cloud_opts *o, struct v2k_error *err)
{
  if (!o->endpoint || !*o->endpoint || !o->apikey || !*o->apikey || !o->secretkey || !*o->secretkey) {
    v2k_error_set (err, V2K_EXIT_USAGE, "the cloud API needs an endpoint, an API key and a secret "
                   "key (--cloud-endpoint, --cloud-cred-file, the environment, or a cmk profile)");
    return NULL;
  }
  if (strncmp (o->endpoint, "http://", 7) != 0 && strncmp (o->endpoint, "https://", 8) != 0) {
    v2k_error_set (err, V2K_EXIT_USAGE, "--cloud-endpoint: '%s' is not an http(s) URL "
                   "(like http://mgmt:8080/client/api)", o->endpoint);
    return NULL;
  }
  struct v2k_cloud *c = calloc (1, sizeof *c);
  if (!c || !(c->curl = curl_easy_init ())) {
    free (c);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return NULL;
  }
  c->o = *o;
  /* Own copies: the caller's credentials are wiped once the client is open. */
  c->o.endpoint = c->endpoint = strdup (o->endpoint);
  c->o.apikey = c->apikey = strdup (o->apikey);
  c->o.secretkey = c->secretkey = strdup (o->secretkey);
  c->o.ca_file = c->ca_file = o->ca_file ? strdup (o->ca_file) : NULL;
  if (c->o.alg < 0)
    c->o.alg = CLOUD_ALG_SHA256;
  if (c->o.timeout <= 0)
    c->o.timeout = 120;
  snprintf (c->key_hint, sizeof c->key_hint, "%.6s…", o->apikey);
  return c;
}

void
v2k_cloud_close (struct v2k_cloud *c)
{
  if (!c)
    return;
  curl_easy_cleanup (c->curl);
  free (c->endpoint);
  free (c->apikey);
  if (c->secretkey) {
    explicit_bzero (c->secretkey, strlen (c->secretkey));
    free (c->secretkey);
  }
  free (c->ca_file);
  free (c);
}

int
v2k_cloud_alg (const struct v2k_cloud *c)
{
  return c->o.alg;
}

bool
v2k_cloud_transport_failed (const struct v2k_cloud *c)
{
  return c->transport_failed;
}

const char *
v2k_cloud_key_hint (const struct v2k_cloud *c)
{
  return c->key_hint;
}

static size_t
collect (char *p, size_t size, size_t n, void *opaque)
{
  struct strbuf *b = opaque;
  if (b->len + size * n > (64u << 20))
    return 0;                  /* no reply of ours is this large */
  sb_addn (b, p, size * n);
  return size * n;
}

static char *
lower (const char *s)
{
  char *l = strdup (s);
  for (char *p = l; p && *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char) (*p - 'A' + 'a');
  return l;
}

/* The wire body: every parameter encoded, then the signature. */
static char *
request_body (struct v2k_cloud *c, const char *command, const struct v2k_cloud_param *p, size_t n)
{
  char expires[40];
  time_t t = time (NULL) + 300;
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (expires, sizeof expires, "%Y-%m-%dT%H:%M:%S+0000", &tm);
  struct v2k_cloud_param *all = calloc (n + 5, sizeof *all);
  if (!all)
    return NULL;
  size_t k = 0;
  all[k++] = (struct v2k_cloud_param) { "command", command };
  all[k++] = (struct v2k_cloud_param) { "apiKey", c->o.apikey };
  all[k++] = (struct v2k_cloud_param) { "response", "json" };
  all[k++] = (struct v2k_cloud_param) { "signatureversion", "3" };
  all[k++] = (struct v2k_cloud_param) { "expires", expires };
  for (size_t i = 0; i < n; i++)
    if (p[i].value && *p[i].value)
      all[k++] = p[i];
  char *sig = v2k_cloud_sign (all, k, c->o.secretkey, c->o.alg);
  struct strbuf b = { 0 };
  sb_add (&b, "");
  for (size_t i = 0; i < k; i++) {
    char *v = v2k_cloud_encode (all[i].value);
    sb_addf (&b, "%s%s=%s", i ? "&" : "", all[i].name, v ? v : "");
    free (v);
  }
  char *s = sig ? v2k_cloud_encode (sig) : NULL;
  sb_addf (&b, "&signature=%s", s ? s : "");
  free (s);
  free (sig);
  free (all);
  return b.s;
}

/* One HTTP exchange: 0 with *STATUS and *BODY, or -1 on a transport error. */
static int
post (struct v2k_cloud *c, const char *body, bool mutating, long *status, struct strbuf *reply,
      struct v2k_error *err)
{
  CURL *h = c->curl;
  curl_easy_reset (h);
  if (mutating) {
    /* libcurl re-sends a request whose reused connection died; a change
     * must go out once, so it gets a connection of its own. */
    curl_easy_setopt (h, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt (h, CURLOPT_FORBID_REUSE, 1L);
  }
  curl_easy_setopt (h, CURLOPT_URL, c->o.endpoint);
  curl_easy_setopt (h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, reply);
  curl_easy_setopt (h, CURLOPT_TIMEOUT, c->o.timeout);
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT, 15L);
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (c->o.ca_file)
    curl_easy_setopt (h, CURLOPT_CAINFO, c->o.ca_file);
  if (c->o.insecure) {
    curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt (h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  struct curl_slist *hdr = curl_slist_append (NULL, "Content-Type: application/x-www-form-urlencoded");
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, hdr);
  CURLcode r = curl_easy_perform (h);
  curl_slist_free_all (hdr);
  if (r != CURLE_OK) {
    v2k_error_set (err, V2K_EXIT_CLOUD, "cloud API %s: %s", c->o.endpoint, curl_easy_strerror (r));
    return -1;
  }
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, status);
  return 0;
}

static void
api_error (const char *command, long status, json_t *inner, struct v2k_error *err)
{
  const char *text = json_string_value (json_object_get (inner, "errortext"));
  json_int_t code = json_integer_value (json_object_get (inner, "errorcode"));
  json_int_t cs = json_integer_value (json_object_get (inner, "cserrorcode"));
  if (status == 401)
    v2k_error_set (err, V2K_EXIT_CLOUD, "cloud API %s: HTTP 401, %s: check the API key and secret, "
                   "the signature algorithm (--cloud-signature), the clock, and that the API exists",
                   command, text ? text : "unauthorized");
  else
    v2k_error_set (err, V2K_EXIT_CLOUD, "cloud API %s: %s (errorcode %lld, cserrorcode %lld, HTTP %ld)",
                   command, text ? text : "no error text", (long long) code, (long long) cs, status);
}

int
v2k_cloud_call (struct v2k_cloud *c, const char *command, const struct v2k_cloud_param *p,
                size_t n, bool mutating, json_t **out, struct v2k_error *err)
{
  *out = NULL;
  CLEANUP_FREE char *body = request_body (c, command, p, n);
  CLEANUP_FREE char *key = NULL;
  CLEANUP_FREE char *lc = lower (command);
  if (!body || !lc || asprintf (&key, "%sresponse", lc) < 0) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  int tries = mutating ? 1 : 4;
  for (int attempt = 0; attempt < tries; attempt++) {
    if (attempt > 0) {
      struct timespec nap = { attempt, 0 };
      nanosleep (&nap, NULL);
    }
    struct strbuf reply = { 0 };
    long status = 0;
    sb_add (&reply, "");
    c->transport_failed = false;
    if (post (c, body, mutating, &status, &reply, err) == -1) {
      c->transport_failed = true;
      sb_free (&reply);
      continue;
    }
    json_error_t je;
    json_t *j = json_loads (reply.s, 0, &je);
    sb_free (&reply);
    json_t *inner = json_object_get (j, key);
    if (!inner)
      inner = json_object_get (j, "errorresponse");
    if (status == 200 && json_is_object (inner)) {
      *out = json_incref (inner);
      json_decref (j);
      return 0;
    }
    if (status == 429 || status == 502 || status == 503) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "cloud API %s: HTTP %ld (the server is busy)", command, status);
      json_decref (j);
      continue;
    }
    if (json_is_object (inner))
      api_error (command, status, inner, err);
    else
      v2k_error_set (err, V2K_EXIT_CLOUD, "cloud API %s: HTTP %ld with no %s object", command,
                     status, key);
    json_decref (j);
    return -1;
  }
  return -1;
}

int
v2k_cloud_list (struct v2k_cloud *c, const char *command, const char *objname,
                const struct v2k_cloud_param *p, size_t n, json_t **out, struct v2k_error *err)
{
  struct v2k_cloud_param *q = calloc (n + 2, sizeof *q);
  if (!q) {
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  if (n)
    memcpy (q, p, n * sizeof *q);
  json_t *all = json_array ();
  int rc = -1;
  for (int page = 1; page < 10000; page++) {
    char pg[16];
    snprintf (pg, sizeof pg, "%d", page);
    q[n] = (struct v2k_cloud_param) { "page", pg };
    q[n + 1] = (struct v2k_cloud_param) { "pagesize", "500" };
    json_t *r;
    if (v2k_cloud_call (c, command, q, n + 2, false, &r, err) == -1)
      goto out;
    json_t *arr = json_object_get (r, objname);   /* an empty list has none */
    json_int_t count = json_integer_value (json_object_get (r, "count"));
    size_t got = json_array_size (arr);
    json_array_extend (all, arr);
    json_decref (r);
    if (got < 500 || (json_int_t) json_array_size (all) >= count)
      break;
  }
  *out = all;
  all = NULL;
  rc = 0;
 out:
  json_decref (all);
  free (q);
  return rc;
}

int
v2k_cloud_job_wait (struct v2k_cloud *c, const char *jobid, int timeout,
                    volatile sig_atomic_t *stop, json_t **result, struct v2k_error *err)
{
  time_t deadline = time (NULL) + timeout;
  int wait_ms = 500;
  for (;;) {
    struct v2k_cloud_param p[] = { { "jobid", jobid } };
    json_t *r;
    if (v2k_cloud_call (c, "queryAsyncJobResult", p, 1, false, &r, err) == -1)
      return -1;
    json_int_t st = json_integer_value (json_object_get (r, "jobstatus"));
    if (st == 1) {
      if (result)
        *result = json_incref (json_object_get (r, "jobresult"));
      json_decref (r);
      return 0;
    }
    if (st == 2) {
      json_t *jr = json_object_get (r, "jobresult");
      const char *text = json_string_value (json_object_get (jr, "errortext"));
      v2k_error_set (err, V2K_EXIT_CLOUD, "cloud job %s failed: %s (errorcode %lld)", jobid,
                     text ? text : "no error text",
                     (long long) json_integer_value (json_object_get (jr, "errorcode")));
      json_decref (r);
      return -1;
    }
    json_decref (r);
    if (time (NULL) >= deadline) {
      v2k_error_set (err, V2K_EXIT_CLOUD, "cloud job %s did not finish within %d s; it is recorded, "
                     "and a re-run polls it again", jobid, timeout);
      return -1;
    }
    if (stop && *stop) {
      v2k_error_set (err, V2K_EXIT_INTERRUPTED, "interrupted while waiting for cloud job %s; a "
                     "re-run polls it again", jobid);
      return -1;
    }
    struct timespec nap = { wait_ms / 1000, (wait_ms % 1000) * 1000000L };
    nanosleep (&nap, NULL);
    if (wait_ms < 5000)
      wait_ms = wait_ms * 2 > 5000 ? 5000 : wait_ms * 2;
  }
}

int
v2k_cloud_probe (struct v2k_cloud *c, int hint, struct v2k_error *err)
{
  static const int all[] = { CLOUD_ALG_SHA256, CLOUD_ALG_SHA1, CLOUD_ALG_SHA512 };
  int tried[3];
  size_t nt = 0;
  tried[nt++] = hint >= 0 ? hint : CLOUD_ALG_SHA256;
  for (size_t i = 0; i < 3; i++)
    if (all[i] != tried[0])
      tried[nt++] = all[i];
  for (size_t i = 0; i < nt; i++) {
    c->o.alg = tried[i];
    struct v2k_cloud_param p[] = { { "name", "listApis" } };
    json_t *r;
    if (v2k_cloud_call (c, "listApis", p, 1, false, &r, err) == 0) {
      json_decref (r);
      return 0;
    }
    if (!strstr (err->message, "HTTP 401"))
      return -1;             /* not a signature problem: say what it is */
  }
  v2k_error_set (err, V2K_EXIT_CLOUD, "cloud API %s refused every signature algorithm (sha256, "
                 "sha1, sha512) for API key %s: the API key or secret key is wrong", c->o.endpoint,
                 c->key_hint);
  return -1;
}
