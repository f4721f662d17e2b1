#include <stdlib.h>
#include <string.h>

#include "propcoll.h"
#include "../util/strbuf.h"

static int
grow (void **arr, size_t n, size_t size)
{
  void *p = realloc (*arr, (n + 1) * size);
  if (!p)
    return -1;
  *arr = p;
  return 0;
}

int
v2k_pc_collect (xmlNode *rv, struct v2k_pc_result *res, char **token, struct v2k_error *err)
{
  *token = v2k_xml_child_text (rv, "token");
  for (xmlNode *o = v2k_xml_child (rv, "objects"); o; o = v2k_xml_next (o)) {
    if (grow ((void **) &res->objs, res->nobjs, sizeof *res->objs) == -1)
      goto oom;
    struct v2k_pc_object *obj = &res->objs[res->nobjs++];
    memset (obj, 0, sizeof *obj);
    xmlNode *ref = v2k_xml_child (o, "obj");
    obj->moref = v2k_xml_text (ref);
    obj->type = ref ? (char *) xmlGetProp (ref, (const xmlChar *) "type") : NULL;
    if (obj->type) {
      char *t = strdup (obj->type);
      xmlFree (obj->type);
      obj->type = t;
    }
    for (xmlNode *p = v2k_xml_child (o, "propSet"); p; p = v2k_xml_next (p)) {
      if (grow ((void **) &obj->names, obj->nprops, sizeof *obj->names) == -1 ||
          grow ((void **) &obj->vals, obj->nprops, sizeof *obj->vals) == -1)
        goto oom;
      obj->names[obj->nprops] = v2k_xml_child_text (p, "name");
      obj->vals[obj->nprops] = v2k_xml_child (p, "val");
      obj->nprops++;
    }
  }
  return 0;
 oom:
  v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
  return -1;
}

static int
keep_doc (struct v2k_pc_result *res, xmlDoc *doc, struct v2k_error *err)
{
  if (grow ((void **) &res->docs, res->ndocs, sizeof *res->docs) == -1) {
    xmlFreeDoc (doc);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  res->docs[res->ndocs++] = doc;
  return 0;
}

int
v2k_pc_retrieve (struct v2k_soap *s, const char *specset, struct v2k_pc_result *res,
                 struct v2k_error *err)
{
  const char *pc = v2k_soap_content (s)->property_collector;
  struct strbuf p = { 0 };
  sb_addf (&p, "<specSet>%s</specSet><options><maxObjects>500</maxObjects></options>", specset);
  xmlDoc *doc;
  xmlNode *resp;
  int r = v2k_soap_call (s, "RetrievePropertiesEx", "PropertyCollector", pc, p.s, false,
                         &doc, &resp, err);
  sb_free (&p);
  if (r == -1 || keep_doc (res, doc, err) == -1)
    return -1;
  char *token = NULL;
  xmlNode *rv = v2k_xml_child (resp, "returnval");
  if (rv && v2k_pc_collect (rv, res, &token, err) == -1)
    return -1;
  while (token) {
    struct strbuf q = { 0 };
    sb_add (&q, "<token>");
    sb_add_xml (&q, token);
    sb_add (&q, "</token>");
    free (token);
    token = NULL;
    r = v2k_soap_call (s, "ContinueRetrievePropertiesEx", "PropertyCollector", pc, q.s, false,
                       &doc, &resp, err);
    sb_free (&q);
    if (r == -1 || keep_doc (res, doc, err) == -1)
      return -1;
    rv = v2k_xml_child (resp, "returnval");
    if (rv && v2k_pc_collect (rv, res, &token, err) == -1)
      return -1;
  }
  return 0;
}

static void
add_paths (struct strbuf *b, const char *type, const char *const *paths)
{
  sb_add (b, "<propSet><type>");
  sb_add_xml (b, type);
  sb_add (b, "</type>");
  for (size_t i = 0; paths[i]; i++) {
    sb_add (b, "<pathSet>");
    sb_add_xml (b, paths[i]);
    sb_add (b, "</pathSet>");
  }
  sb_add (b, "</propSet>");
}

int
v2k_pc_get (struct v2k_soap *s, const char *type, const char *moref,
            const char *const *paths, struct v2k_pc_result *res, struct v2k_error *err)
{
  struct strbuf b = { 0 };
  add_paths (&b, type, paths);
  sb_addf (&b, "<objectSet><obj type=\"%s\">", type);
  sb_add_xml (&b, moref);
  sb_add (&b, "</obj><skip>false</skip></objectSet>");
  int r = v2k_pc_retrieve (s, b.s, res, err);
  sb_free (&b);
  return r;
}

static int
get_all_once (struct v2k_soap *s, const char *type, const char *const *paths,
              struct v2k_pc_result *res, struct v2k_error *err)
{
  const struct v2k_service_content *sc = v2k_soap_content (s);
  struct strbuf p = { 0 };
  sb_add (&p, "<container type=\"Folder\">");
  sb_add_xml (&p, sc->root_folder);
  sb_add (&p, "</container><type>");
  sb_add_xml (&p, type);
  sb_add (&p, "</type><recursive>true</recursive>");
  xmlDoc *doc;
  xmlNode *resp;
  int r = v2k_soap_call (s, "CreateContainerView", "ViewManager", sc->view_manager, p.s, false,
                         &doc, &resp, err);
  sb_free (&p);
  if (r == -1)
    return -1;
  char *view = v2k_xml_child_text (resp, "returnval");
  xmlFreeDoc (doc);
  if (!view) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "CreateContainerView returned no view");
    return -1;
  }
  struct strbuf b = { 0 };
  add_paths (&b, type, paths);
  sb_add (&b, "<objectSet><obj type=\"ContainerView\">");
  sb_add_xml (&b, view);
  sb_add (&b, "</obj><skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><type>ContainerView</type>"
          "<path>view</path><skip>false</skip></selectSet></objectSet>");
  r = v2k_pc_retrieve (s, b.s, res, err);
  sb_free (&b);
  struct v2k_error ignored = { 0 };
  if (v2k_soap_call (s, "DestroyView", "ContainerView", view, NULL, false, &doc, &resp,
                     &ignored) == 0)
    xmlFreeDoc (doc);
  free (view);
  return r;
}

int
v2k_pc_get_all (struct v2k_soap *s, const char *type, const char *const *paths,
                struct v2k_pc_result *res, struct v2k_error *err)
{
  unsigned gen = v2k_soap_session_generation (s);
  if (get_all_once (s, type, paths, res, err) == 0)
    return 0;
  if (gen == v2k_soap_session_generation (s))
    return -1;
  /* The session expired under us and its view went with it: start over. */
  v2k_pc_result_free (res);
  return get_all_once (s, type, paths, res, err);
}

xmlNode *
v2k_pc_prop (const struct v2k_pc_object *o, const char *name)
{
  for (size_t i = 0; i < o->nprops; i++)
    if (o->names[i] && strcmp (o->names[i], name) == 0)
      return o->vals[i];
  return NULL;
}

char *
v2k_pc_prop_text (const struct v2k_pc_object *o, const char *name)
{
  return v2k_xml_text (v2k_pc_prop (o, name));
}

void
v2k_pc_result_free (struct v2k_pc_result *res)
{
  for (size_t i = 0; i < res->nobjs; i++) {
    struct v2k_pc_object *o = &res->objs[i];
    for (size_t j = 0; j < o->nprops; j++)
      free (o->names[j]);
    free (o->names);
    free (o->vals);
    free (o->moref);
    free (o->type);
  }
  free (res->objs);
  for (size_t i = 0; i < res->ndocs; i++)
    xmlFreeDoc (res->docs[i]);
  free (res->docs);
  memset (res, 0, sizeof *res);
}
