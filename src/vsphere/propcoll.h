/* The property collector: RetrievePropertiesEx, paged to the end with
 * ContinueRetrievePropertiesEx, and container views for inventory-wide
 * lookups. */
#ifndef V2K_VSPHERE_PROPCOLL_H
#define V2K_VSPHERE_PROPCOLL_H

#include <stddef.h>
#include "soap.h"

struct v2k_pc_object {
  char *type;
  char *moref;
  size_t nprops;
  char **names;
  xmlNode **vals;     /* the <val> elements; they live in the result's docs */
};

struct v2k_pc_result {
  xmlDoc **docs;
  size_t ndocs;
  struct v2k_pc_object *objs;
  size_t nobjs;
};

/* Runs one RetrievePropertiesEx with SPECSET (the escaped XML inside
 * <specSet>) and every continuation page. */
int v2k_pc_retrieve (struct v2k_soap *s, const char *specset, struct v2k_pc_result *res,
                     struct v2k_error *err);
/* PATHS (NULL-terminated) of one object. */
int v2k_pc_get (struct v2k_soap *s, const char *type, const char *moref,
                const char *const *paths, struct v2k_pc_result *res, struct v2k_error *err);
/* PATHS of every object of TYPE in the inventory (a recursive container view
 * on the root folder, destroyed afterwards). */
int v2k_pc_get_all (struct v2k_soap *s, const char *type, const char *const *paths,
                    struct v2k_pc_result *res, struct v2k_error *err);
/* The <val> of property NAME, or NULL when unset (vSphere omits nil values). */
xmlNode *v2k_pc_prop (const struct v2k_pc_object *o, const char *name);
/* Adds the objects of one RetrievePropertiesEx <returnval> to RES; *TOKEN
 * gets its continuation token (or NULL). The nodes stay owned by their
 * document. */
int v2k_pc_collect (xmlNode *rv, struct v2k_pc_result *res, char **token, struct v2k_error *err);
char *v2k_pc_prop_text (const struct v2k_pc_object *o, const char *name);
void v2k_pc_result_free (struct v2k_pc_result *res);

#endif
