/* The vim25 SOAP client: HTTPS transport (libcurl), TLS policy (CA, pinned
 * thumbprint, or insecure), the session cookie, re-login after an expired
 * session, retries of read-only calls, and faults turned into errors. */
#ifndef V2K_VSPHERE_SOAP_H
#define V2K_VSPHERE_SOAP_H

#include <stdbool.h>
#include <libxml/tree.h>

#include "xml.h"
#include "../util/error.h"

struct v2k_vsphere_opts {
  const char *url;            /* host, host:port, https://host[:port][/sdk] */
  const char *username;
  const char *password;       /* never logged, never in argv */
  const char *ca_file;        /* a PEM bundle to trust instead of the system store */
  const char *thumbprint;     /* pin: SHA-1 or SHA-256, "AA:BB:…" */
  bool insecure;              /* no verification at all */
  long connect_timeout;       /* seconds */
  long call_timeout;          /* seconds, per HTTP request */
};

struct v2k_service_content {
  char *root_folder, *property_collector, *view_manager, *session_manager, *search_index;
  char *about_full_name, *about_version, *about_api_version, *about_api_type,
    *about_instance_uuid;
};

struct v2k_soap;

/* Normalizes a --vcenter value to https://host[:port]/sdk. */
char *v2k_vsphere_sdk_url (const char *value, struct v2k_error *err);

/* Connects, reads the ServiceContent and logs in. */
struct v2k_soap *v2k_soap_connect (const struct v2k_vsphere_opts *opts, struct v2k_error *err);
/* Logs out (best effort) and frees. */
void v2k_soap_close (struct v2k_soap *s);

const struct v2k_service_content *v2k_soap_content (const struct v2k_soap *s);
const char *v2k_soap_url (const struct v2k_soap *s);
/* The server certificate's thumbprints as seen on the last connection. */
const char *v2k_soap_thumbprint_sha1 (const struct v2k_soap *s);

/* Calls METHOD on the object THIS_TYPE:THIS_MOREF with PARAMS, the already
 * escaped XML of the method's arguments after _this. MUTATING calls change
 * state and are never repeated after a transport failure; read-only calls
 * are retried with backoff. After NotAuthenticated the client logs in again
 * once and repeats the call. On success *DOC (to free with xmlFreeDoc) holds
 * the reply and *RESP its <METHODResponse> element. On a fault, the error
 * carries its name and message, and v2k_soap_last_fault describes it. */
int v2k_soap_call (struct v2k_soap *s, const char *method, const char *this_type,
                   const char *this_moref, const char *params, bool mutating,
                   xmlDoc **doc, xmlNode **resp, struct v2k_error *err);

/* Counts logins: session-scoped objects (views) made before a re-login are gone. */
unsigned v2k_soap_session_generation (const struct v2k_soap *s);

/* The fault of the last failed call (name "" if it failed otherwise). */
const struct v2k_fault *v2k_soap_last_fault (const struct v2k_soap *s);

/* Turns a fault into an error: InvalidLogin and NotAuthenticated are
 * connection errors, anything else a vSphere fault. */
void v2k_fault_to_error (const struct v2k_fault *f, const char *method, struct v2k_error *err);

#endif
