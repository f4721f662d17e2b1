#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbt.h"
#include "propcoll.h"
#include "task.h"
#include "../util/strbuf.h"

int
v2k_cbt_set (struct v2k_soap *s, const char *vm, bool on, int timeout, struct v2k_error *err)
{
  char params[128];
  snprintf (params, sizeof params,
            "<spec><changeTrackingEnabled>%s</changeTrackingEnabled></spec>", on ? "true" : "false");
  xmlDoc *doc;
  xmlNode *resp;
  if (v2k_soap_call (s, "ReconfigVM_Task", "VirtualMachine", vm, params, true, &doc, &resp, err) == -1)
    return -1;
  char *task = v2k_task_from_response (resp);
  xmlFreeDoc (doc);
  int r = v2k_task_wait (s, task, on ? "enabling CBT" : "disabling CBT", timeout, NULL, NULL,
                         NULL, NULL, err);
  free (task);
  if (r == -1)
    return -1;
  static const char *const paths[] = { "config.changeTrackingEnabled", NULL };
  struct v2k_pc_result res = { 0 };
  if (v2k_pc_get (s, "VirtualMachine", vm, paths, &res, err) == -1)
    return -1;
  char *val = res.nobjs ? v2k_pc_prop_text (&res.objs[0], "config.changeTrackingEnabled") : NULL;
  bool now_on = val && strcmp (val, "true") == 0;
  free (val);
  v2k_pc_result_free (&res);
  if (now_on != on) {
    v2k_error_set (err, V2K_EXIT_CBT,
                   "ReconfigVM_Task succeeded but config.changeTrackingEnabled reads %s",
                   now_on ? "true" : "false");
    return -1;
  }
  return 0;
}

static int
page_error (struct v2k_error *err, int page, int64_t offset, const char *fmt, const char *what)
{
  char detail[256];
  snprintf (detail, sizeof detail, fmt, what);
  v2k_error_set (err, V2K_EXIT_CBT,
                 "changed areas reply %d (asked from offset %lld) %s; refusing to trust CBT",
                 page, (long long) offset, detail);
  return -1;
}

int
v2k_changed_areas_page (xmlNode *resp, int64_t offset, int64_t capacity, int page,
                        int64_t *prev_end, v2k_extents *out, int64_t *next,
                        struct v2k_error *err)
{
  xmlNode *rv = v2k_xml_child (resp, "returnval");
  int64_t start, length;
  if (!rv || v2k_xml_child_int64 (rv, "startOffset", &start) == -1 ||
      v2k_xml_child_int64 (rv, "length", &length) == -1)
    return page_error (err, page, offset, "%s", "has no startOffset or length");
  char buf[160];
  if (start != offset) {
    snprintf (buf, sizeof buf, "starts at %lld", (long long) start);
    return page_error (err, page, offset, "%s", buf);
  }
  if (length <= 0) {
    snprintf (buf, sizeof buf, "has length %lld", (long long) length);
    return page_error (err, page, offset, "%s", buf);
  }
  if (length > capacity - start) {
    snprintf (buf, sizeof buf, "covers up to %lld, past the capacity %lld",
              (long long) (start + length), (long long) capacity);
    return page_error (err, page, offset, "%s", buf);
  }
  int64_t end = start + length;
  for (xmlNode *a = v2k_xml_child (rv, "changedArea"); a; a = v2k_xml_next (a)) {
    int64_t as, al;
    if (v2k_xml_child_int64 (a, "start", &as) == -1 || v2k_xml_child_int64 (a, "length", &al) == -1)
      return page_error (err, page, offset, "%s", "has an area without start or length");
    if (al <= 0) {
      snprintf (buf, sizeof buf, "has an area at %lld of length %lld", (long long) as, (long long) al);
      return page_error (err, page, offset, "%s", buf);
    }
    if (as < start || al > end - as) {
      snprintf (buf, sizeof buf, "has an area [%lld, +%lld) outside its range [%lld, %lld)",
                (long long) as, (long long) al, (long long) start, (long long) end);
      return page_error (err, page, offset, "%s", buf);
    }
    if (as < *prev_end) {
      snprintf (buf, sizeof buf, "has an area at %lld overlapping or before the previous one ending at %lld",
                (long long) as, (long long) *prev_end);
      return page_error (err, page, offset, "%s", buf);
    }
    if (v2k_extents_add (out, as, al) == -1) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    *prev_end = as + al;
  }
  *next = end;
  return 0;
}

int
v2k_changed_areas_query (struct v2k_soap *s, const char *vm, const char *snapshot,
                         int64_t key, int64_t capacity, const char *change_id,
                         v2k_extents *out, int *pages, struct v2k_error *err)
{
  int64_t offset = 0, prev_end = 0;
  int page = 0;
  while (offset < capacity) {
    struct strbuf p = { 0 };
    if (snapshot) {
      sb_add (&p, "<snapshot type=\"VirtualMachineSnapshot\">");
      sb_add_xml (&p, snapshot);
      sb_add (&p, "</snapshot>");
    }
    sb_addf (&p, "<deviceKey>%lld</deviceKey><startOffset>%lld</startOffset><changeId>",
             (long long) key, (long long) offset);
    sb_add_xml (&p, change_id);
    sb_add (&p, "</changeId>");
    xmlDoc *doc;
    xmlNode *resp;
    page++;
    int r = v2k_soap_call (s, "QueryChangedDiskAreas", "VirtualMachine", vm, p.s, false,
                           &doc, &resp, err);
    sb_free (&p);
    if (r == -1) {
      const struct v2k_fault *f = v2k_soap_last_fault (s);
      if (strcmp (f->name, "InvalidArgument") == 0 && strcmp (f->invalid_property, "changeId") == 0)
        v2k_error_set (err, V2K_EXIT_CBT,
                       "disk %lld: vSphere rejected changeId \"%s\": change tracking was reset "
                       "since it was recorded. Recover with 'cbt reset', then 'sync base --full'",
                       (long long) key, change_id);
      else if (strcmp (f->name, "FileFault") == 0)
        v2k_error_set (err, V2K_EXIT_CBT,
                       "disk %lld: change tracking gives no answer (FileFault: %s); is CBT "
                       "enabled and was the snapshot taken after it was?", (long long) key,
                       f->message);
      return -1;
    }
    int64_t next;
    r = v2k_changed_areas_page (resp, offset, capacity, page, &prev_end, out, &next, err);
    xmlFreeDoc (doc);
    if (r == -1) {
      v2k_error_prefix (err, "disk %lld", (long long) key);
      return -1;
    }
    offset = next;
  }
  if (pages)
    *pages = page;
  return 0;
}

bool
v2k_change_id_same_epoch (const char *a, const char *b)
{
  const char *sa = strrchr (a, '/'), *sb = strrchr (b, '/');
  if (!sa || !sb)
    return false;
  return sa - a == sb - b && strncmp (a, b, (size_t) (sa - a)) == 0;
}
