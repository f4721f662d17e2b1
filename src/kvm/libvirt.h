/* Defining and starting the migrated domain through the libvirt C API.
 * A domain that already has the name is ours only when its UUID is the one
 * this run recorded, or its metadata names this run (a crash can fall
 * between the define and the manifest save); any other is refused. */
#ifndef V2K_KVM_LIBVIRT_H
#define V2K_KVM_LIBVIRT_H

#include <stdbool.h>
#include <libvirt/libvirt.h>
#include "../util/error.h"

/* URI NULL or empty: LIBVIRT_DEFAULT_URI, else qemu:///system. */
const char *v2k_libvirt_default_uri (const char *uri);
virConnectPtr v2k_libvirt_open (const char *uri, struct v2k_error *err);

/* Whether NAME may be (re)defined by run RUN_ID, whose recorded UUID is
 * OWN_UUID (may be NULL): 0 if no such domain exists or it is ours (*EXISTS
 * tells which), -1 with a libvirt error naming the stranger otherwise. */
int v2k_libvirt_check_name (virConnectPtr c, const char *name, const char *run_id,
                            const char *own_uuid, bool *exists, struct v2k_error *err);

/* Defines XML with VIR_DOMAIN_DEFINE_VALIDATE; UUID (37 bytes) gets the
 * domain's UUID. */
int v2k_libvirt_define (virConnectPtr c, const char *xml, char *uuid, struct v2k_error *err);

/* Starts NAME unless it runs already (*WAS_RUNNING then). */
int v2k_libvirt_start (virConnectPtr c, const char *name, bool *was_running, struct v2k_error *err);

/* The state of NAME as libvirt says it: "running", "shut off", … */
const char *v2k_libvirt_state (virConnectPtr c, const char *name);

/* How many domains (defined or running) have NAME: 0 or 1. */
int v2k_libvirt_count (virConnectPtr c, const char *name);

#endif
