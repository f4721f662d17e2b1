#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>

#include "xml.h"

static bool
is_vim (const xmlNode *n, const char *name)
{
  if (n->type != XML_ELEMENT_NODE || !n->ns || !n->ns->href)
    return false;
  if (strcmp ((const char *) n->ns->href, VIM25_NS) != 0)
    return false;
  return !name || strcmp ((const char *) n->name, name) == 0;
}

xmlDoc *
v2k_xml_parse (const char *buf, size_t len, struct v2k_error *err)
{
  if (len > (size_t) INT32_MAX) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "response too large (%zu bytes)", len);
    return NULL;
  }
  if (memmem (buf, len, "<!DOCTYPE", 9) || memmem (buf, len, "<!ENTITY", 8)) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "response carries a DTD or entity declaration; refused");
    return NULL;
  }
  xmlDoc *doc = xmlReadMemory (buf, (int) len, "response.xml", NULL,
                               XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                               XML_PARSE_NOCDATA);
  if (!doc) {
    const xmlError *e = xmlGetLastError ();
    v2k_error_set (err, V2K_EXIT_VSPHERE, "malformed SOAP response: %s",
                   e && e->message ? e->message : "not XML");
    /* libxml2's messages end in a newline; an error is one line. */
    size_t n = strlen (err->message);
    while (n > 0 && (err->message[n - 1] == '\n' || err->message[n - 1] == ' '))
      err->message[--n] = '\0';
    return NULL;
  }
  return doc;
}

xmlNode *
v2k_xml_child (const xmlNode *parent, const char *name)
{
  if (!parent)
    return NULL;
  for (xmlNode *c = parent->children; c; c = c->next)
    if (is_vim (c, name))
      return c;
  return NULL;
}

xmlNode *
v2k_xml_next (const xmlNode *node)
{
  for (xmlNode *c = node->next; c; c = c->next)
    if (is_vim (c, (const char *) node->name))
      return c;
  return NULL;
}

xmlNode *
v2k_xml_path (const xmlNode *node, ...)
{
  va_list ap;
  va_start (ap, node);
  const char *name;
  xmlNode *cur = (xmlNode *) node;
  while (cur && (name = va_arg (ap, const char *)) != NULL)
    cur = v2k_xml_child (cur, name);
  va_end (ap);
  return cur;
}

char *
v2k_xml_type (const xmlNode *node)
{
  if (!node)
    return NULL;
  return (char *) xmlGetNsProp (node, (const xmlChar *) "type", (const xmlChar *) XSI_NS);
}

bool
v2k_xml_type_is (const xmlNode *node, const char *type)
{
  char *t = v2k_xml_type (node);
  bool r = t && strcmp (t, type) == 0;
  xmlFree (t);
  return r;
}

char *
v2k_xml_text (const xmlNode *node)
{
  if (!node)
    return NULL;
  xmlChar *c = xmlNodeGetContent (node);
  char *s = strdup (c ? (const char *) c : "");
  xmlFree (c);
  return s;
}

char *
v2k_xml_child_text (const xmlNode *parent, const char *name)
{
  return v2k_xml_text (v2k_xml_child (parent, name));
}

int
v2k_xml_child_int64 (const xmlNode *parent, const char *name, int64_t *out)
{
  char *s = v2k_xml_child_text (parent, name);
  if (!s)
    return -1;
  char *end;
  long long v = strtoll (s, &end, 10);
  int ok = *s && *end == '\0';
  free (s);
  if (!ok)
    return -1;
  *out = v;
  return 0;
}

bool
v2k_xml_child_bool (const xmlNode *parent, const char *name, bool dflt)
{
  char *s = v2k_xml_child_text (parent, name);
  if (!s)
    return dflt;
  bool r = strcmp (s, "true") == 0 || strcmp (s, "1") == 0;
  free (s);
  return r;
}

xmlNode *
v2k_soap_body (xmlDoc *doc)
{
  xmlNode *env = xmlDocGetRootElement (doc);
  if (!env || !env->ns || strcmp ((const char *) env->ns->href, SOAPENV_NS) != 0)
    return NULL;
  for (xmlNode *c = env->children; c; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && c->ns && strcmp ((const char *) c->ns->href, SOAPENV_NS) == 0 &&
        strcmp ((const char *) c->name, "Body") == 0) {
      for (xmlNode *b = c->children; b; b = b->next)
        if (b->type == XML_ELEMENT_NODE)
          return b;
      return NULL;
    }
  }
  return NULL;
}

static void
copy_text (char *dst, size_t len, const xmlNode *node)
{
  char *s = v2k_xml_text (node);
  snprintf (dst, len, "%s", s ? s : "");
  free (s);
}

void
v2k_fault_from_detail (const xmlNode *d, struct v2k_fault *f)
{
  char *type = v2k_xml_type (d);
  if (type)
    snprintf (f->name, sizeof f->name, "%s", type);
  else {
    /* <InvalidArgumentFault> without xsi:type: strip the "Fault" suffix. */
    snprintf (f->name, sizeof f->name, "%s", (const char *) d->name);
    size_t n = strlen (f->name);
    if (n > 5 && strcmp (f->name + n - 5, "Fault") == 0)
      f->name[n - 5] = '\0';
  }
  xmlFree (type);
  copy_text (f->invalid_property, sizeof f->invalid_property, v2k_xml_child (d, "invalidProperty"));
  copy_text (f->file, sizeof f->file, v2k_xml_child (d, "file"));
}

bool
v2k_soap_fault_parse (const xmlNode *node, struct v2k_fault *f)
{
  memset (f, 0, sizeof *f);
  if (!node || !node->ns || strcmp ((const char *) node->ns->href, SOAPENV_NS) != 0 ||
      strcmp ((const char *) node->name, "Fault") != 0)
    return false;
  for (xmlNode *c = node->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE)
      continue;
    if (strcmp ((const char *) c->name, "faultstring") == 0)
      copy_text (f->message, sizeof f->message, c);
    else if (strcmp ((const char *) c->name, "detail") == 0) {
      for (xmlNode *d = c->children; d; d = d->next)
        if (d->type == XML_ELEMENT_NODE) {
          v2k_fault_from_detail (d, f);
          break;
        }
    }
  }
  if (!f->name[0])
    snprintf (f->name, sizeof f->name, "SystemError");
  return true;
}
