#include <stdlib.h>
#include <string.h>
#include <libvirt/virterror.h>

#include "libvirt.h"
#include "../util/cleanup.h"

#define V2K_METADATA_NS "https://ablestack.io/ablestack-v2k/1"

/* libvirt prints every error to stderr by default; errors go up instead. */
static void
silent_error (void *opaque, virErrorPtr e)
{
  (void) opaque;
  (void) e;
}

static const char *
last_message (void)
{
  const char *m = virGetLastErrorMessage ();
  return m ? m : "unknown libvirt error";
}

const char *
v2k_libvirt_default_uri (const char *uri)
{
  if (uri && *uri)
    return uri;
  const char *env = getenv ("LIBVIRT_DEFAULT_URI");
  return env && *env ? env : "qemu:///system";
}

virConnectPtr
v2k_libvirt_open (const char *uri, struct v2k_error *err)
{
  virSetErrorFunc (NULL, silent_error);
  uri = v2k_libvirt_default_uri (uri);
  virConnectPtr c = virConnectOpen (uri);
  if (!c)
    v2k_error_set (err, V2K_EXIT_LIBVIRT, "cannot connect to libvirt at %s: %s "
                   "(is libvirtd running? choose another with --libvirt-uri)", uri, last_message ());
  return c;
}

/* The run id in the domain's ablestack-v2k metadata, or NULL. */
static char *
metadata_run_id (virDomainPtr d)
{
  CLEANUP_FREE char *meta = virDomainGetMetadata (d, VIR_DOMAIN_METADATA_ELEMENT, V2K_METADATA_NS,
                                                  VIR_DOMAIN_AFFECT_CONFIG);
  if (!meta)
    return NULL;
  /* libvirt re-serializes the element with its own prefix; the id attribute
   * of the run element is what matters. */
  const char *run = strstr (meta, "run id=");
  if (!run)
    return NULL;
  run += strlen ("run id=");
  char q = *run++;
  const char *end = strchr (run, q);
  return end ? strndup (run, (size_t) (end - run)) : NULL;
}

int
v2k_libvirt_check_name (virConnectPtr c, const char *name, const char *run_id,
                        const char *own_uuid, bool *exists, struct v2k_error *err)
{
  virDomainPtr d = virDomainLookupByName (c, name);
  *exists = d != NULL;
  if (!d)
    return 0;
  char uuid[VIR_UUID_STRING_BUFLEN] = "";
  virDomainGetUUIDString (d, uuid);
  CLEANUP_FREE char *rid = metadata_run_id (d);
  virDomainFree (d);
  if ((own_uuid && strcmp (uuid, own_uuid) == 0) || (rid && run_id && strcmp (rid, run_id) == 0))
    return 0;
  v2k_error_set (err, V2K_EXIT_LIBVIRT,
                 "libvirt already has a domain named '%s' (UUID %s) that this run did not define: "
                 "choose another name with --name, or remove that domain yourself", name, uuid);
  return -1;
}

int
v2k_libvirt_define (virConnectPtr c, const char *xml, char *uuid, struct v2k_error *err)
{
  virDomainPtr d = virDomainDefineXMLFlags (c, xml, VIR_DOMAIN_DEFINE_VALIDATE);
  if (!d) {
    v2k_error_set (err, V2K_EXIT_LIBVIRT, "libvirt refused the domain: %s", last_message ());
    return -1;
  }
  virDomainGetUUIDString (d, uuid);
  virDomainFree (d);
  return 0;
}

int
v2k_libvirt_start (virConnectPtr c, const char *name, bool *was_running, struct v2k_error *err)
{
  virDomainPtr d = virDomainLookupByName (c, name);
  if (!d) {
    v2k_error_set (err, V2K_EXIT_LIBVIRT, "domain %s is not defined: %s", name, last_message ());
    return -1;
  }
  int active = virDomainIsActive (d);
  *was_running = active == 1;
  int r = 0;
  if (active != 1 && virDomainCreate (d) < 0) {
    v2k_error_set (err, V2K_EXIT_LIBVIRT, "starting domain %s failed: %s", name, last_message ());
    r = -1;
  }
  virDomainFree (d);
  return r;
}

const char *
v2k_libvirt_state (virConnectPtr c, const char *name)
{
  static const char *const names[] = {
    [VIR_DOMAIN_NOSTATE] = "no state", [VIR_DOMAIN_RUNNING] = "running",
    [VIR_DOMAIN_BLOCKED] = "blocked", [VIR_DOMAIN_PAUSED] = "paused",
    [VIR_DOMAIN_SHUTDOWN] = "shutting down", [VIR_DOMAIN_SHUTOFF] = "shut off",
    [VIR_DOMAIN_CRASHED] = "crashed", [VIR_DOMAIN_PMSUSPENDED] = "suspended",
  };
  virDomainPtr d = virDomainLookupByName (c, name);
  if (!d)
    return "undefined";
  int state = 0, reason = 0;
  int r = virDomainGetState (d, &state, &reason, 0);
  virDomainFree (d);
  if (r < 0 || state < 0 || state >= (int) (sizeof names / sizeof names[0]) || !names[state])
    return "unknown";
  return names[state];
}

int
v2k_libvirt_count (virConnectPtr c, const char *name)
{
  virDomainPtr *doms = NULL;
  int n = virConnectListAllDomains (c, &doms, 0), count = 0;
  for (int i = 0; i < n; i++) {
    if (strcmp (virDomainGetName (doms[i]), name) == 0)
      count++;
    virDomainFree (doms[i]);
  }
  free (doms);
  return count;
}
