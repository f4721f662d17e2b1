/* Reading vim25 SOAP responses with libxml2. Elements are matched by
 * namespace URI and local name, never by prefix. Documents with a DTD are
 * refused before parsing (vSphere never sends one), so entity expansion and
 * external entities cannot happen; the network is never touched. */
#ifndef V2K_VSPHERE_XML_H
#define V2K_VSPHERE_XML_H

#include <stdbool.h>
#include <stdint.h>
#include <libxml/tree.h>

#include "../util/error.h"

#define VIM25_NS "urn:vim25"
#define SOAPENV_NS "http://schemas.xmlsoap.org/soap/envelope/"
#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

/* A vSphere fault, as found in a SOAP Fault or a task's info.error. */
struct v2k_fault {
  char name[96];              /* "InvalidArgument", "FileFault", … */
  char message[512];          /* faultstring or localizedMessage */
  char invalid_property[128]; /* InvalidArgument.invalidProperty */
  char file[512];             /* FileFault.file */
};

xmlDoc *v2k_xml_parse (const char *buf, size_t len, struct v2k_error *err);

/* The first element child of PARENT in urn:vim25 named NAME (or any name if
 * NAME is NULL). */
xmlNode *v2k_xml_child (const xmlNode *parent, const char *name);
/* The next sibling element of NODE with the same name and namespace. */
xmlNode *v2k_xml_next (const xmlNode *node);
/* Follows a path of child names: v2k_xml_path (n, "config", "hardware", NULL). */
xmlNode *v2k_xml_path (const xmlNode *node, ...) __attribute__ ((sentinel));

/* The xsi:type of NODE (whatever prefix names the XSI namespace), or NULL.
 * The result must be freed with xmlFree. */
char *v2k_xml_type (const xmlNode *node);
bool v2k_xml_type_is (const xmlNode *node, const char *type);

/* Text of NODE (freshly allocated with malloc), or NULL if NODE is NULL. */
char *v2k_xml_text (const xmlNode *node);
/* Text of child NAME, or NULL. */
char *v2k_xml_child_text (const xmlNode *parent, const char *name);
int v2k_xml_child_int64 (const xmlNode *parent, const char *name, int64_t *out);
bool v2k_xml_child_bool (const xmlNode *parent, const char *name, bool dflt);

/* The Body's first element (the …Response or the Fault), or NULL. */
xmlNode *v2k_soap_body (xmlDoc *doc);
/* If NODE is a soapenv:Fault, fills F and returns true. */
bool v2k_soap_fault_parse (const xmlNode *node, struct v2k_fault *f);
/* Reads a MethodFault element (a LocalizedMethodFault's <fault> or a
 * <detail> child) into F. */
void v2k_fault_from_detail (const xmlNode *detail_child, struct v2k_fault *f);

#endif
