/* libFuzzer harness: a SOAP reply from vCenter, parsed as the client does:
 * the envelope, a fault, a RetrievePropertiesEx result (and the VM inventory
 * in it), a QueryChangedDiskAreas page and task info. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vsphere/cbt.h"
#include "vsphere/inventory.h"
#include "vsphere/propcoll.h"
#include "vsphere/xml.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct v2k_error err = { 0 };
  xmlDoc *doc = v2k_xml_parse ((const char *) data, size, &err);
  if (!doc)
    return 0;
  xmlNode *body = v2k_soap_body (doc);
  xmlNode *resp = v2k_xml_child (body, NULL);
  struct v2k_fault f;
  memset (&f, 0, sizeof f);
  if (v2k_soap_fault_parse (resp, &f)) {
    xmlFreeDoc (doc);
    return 0;
  }
  /* RetrievePropertiesEx, then the inventory parser on every object. */
  struct v2k_pc_result res = { 0 };
  char *token = NULL;
  xmlNode *rv = v2k_xml_child (resp, "returnval");
  if (rv && v2k_pc_collect (rv, &res, &token, &err) == 0) {
    for (size_t i = 0; i < res.nobjs; i++) {
      for (size_t k = 0; k < res.objs[i].nprops; k++)
        free (v2k_pc_prop_text (&res.objs[i], res.objs[i].names[k] ? res.objs[i].names[k] : ""));
      struct v2k_manifest m = { 0 };
      struct v2k_inventory_report rep = { 0 };
      v2k_inventory_parse_devices (v2k_pc_prop (&res.objs[i], "config.hardware.device"),
                                   v2k_pc_prop (&res.objs[i], "config.bootOptions"), &m, &rep, &err);
      v2k_inventory_report_free (&rep);
      /* Only the parts the device parser fills. */
      struct v2k_manifest *mp = calloc (1, sizeof *mp);
      if (mp) {
        *mp = m;
        v2k_manifest_free (mp);
      }
    }
  }
  free (token);
  v2k_pc_result_free (&res);   /* holds no document: v2k_pc_collect adds none */
  /* A page of changed areas over a 1 TiB disk. */
  v2k_extents areas = empty_vector;
  int64_t prev = 0, next = 0;
  v2k_changed_areas_page (resp, 0, 1LL << 40, 1, &prev, &areas, &next, &err);
  v2k_extents_reset (&areas);
  /* Task info. */
  int64_t progress;
  free (v2k_xml_child_text (rv, "state"));
  v2k_xml_child_int64 (rv, "progress", &progress);
  free (v2k_xml_type (rv));
  xmlFreeDoc (doc);
  return 0;
}
