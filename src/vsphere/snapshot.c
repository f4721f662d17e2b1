#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "propcoll.h"
#include "task.h"
#include "../util/cleanup.h"
#include "../util/strbuf.h"

int
v2k_snapshot_create (struct v2k_soap *s, const char *vm, const char *name, bool quiesce,
                     int timeout, v2k_task_progress_fn progress, void *opaque,
                     char **moref, struct v2k_error *err)
{
  struct strbuf p = { 0 };
  sb_add (&p, "<name>");
  sb_add_xml (&p, name);
  sb_addf (&p, "</name><description>ablestack-v2k migration snapshot</description>"
           "<memory>false</memory><quiesce>%s</quiesce>", quiesce ? "true" : "false");
  xmlDoc *doc;
  xmlNode *resp;
  int r = v2k_soap_call (s, "CreateSnapshot_Task", "VirtualMachine", vm, p.s, true, &doc,
                         &resp, err);
  sb_free (&p);
  if (r == -1)
    return -1;
  CLEANUP_FREE char *task = v2k_task_from_response (resp);
  xmlFreeDoc (doc);
  if (v2k_task_wait (s, task, "creating snapshot", timeout, progress, opaque, moref, NULL,
                     err) == -1)
    return -1;
  if (!*moref || !**moref) {
    v2k_error_set (err, V2K_EXIT_VSPHERE, "CreateSnapshot_Task %s returned no snapshot", task);
    return -1;
  }
  return 0;
}

static int
find_in_tree (xmlNode *list, const char *name, char **moref, int *count)
{
  for (xmlNode *t = list; t; t = v2k_xml_next (t)) {
    CLEANUP_FREE char *n = v2k_xml_child_text (t, "name");
    if (n && strcmp (n, name) == 0) {
      if ((*count)++ == 0)
        *moref = v2k_xml_child_text (t, "snapshot");
    }
    find_in_tree (v2k_xml_child (t, "childSnapshotList"), name, moref, count);
  }
  return 0;
}

int
v2k_snapshot_find (struct v2k_soap *s, const char *vm, const char *name, char **moref,
                   struct v2k_error *err)
{
  static const char *const paths[] = { "snapshot", NULL };
  struct v2k_pc_result res = { 0 };
  *moref = NULL;
  if (v2k_pc_get (s, "VirtualMachine", vm, paths, &res, err) == -1)
    return -1;
  int count = 0;
  xmlNode *snap = res.nobjs ? v2k_pc_prop (&res.objs[0], "snapshot") : NULL;
  find_in_tree (v2k_xml_child (snap, "rootSnapshotList"), name, moref, &count);
  v2k_pc_result_free (&res);
  if (count > 1) {
    free (*moref);
    *moref = NULL;
    v2k_error_set (err, V2K_EXIT_VSPHERE,
                   "%d snapshots of %s are named '%s'; remove the extra ones in vCenter", count,
                   vm, name);
    return -1;
  }
  return 0;
}

struct strv { char **v; size_t n; };

static void
push (struct strv *a, char *s)
{
  char **p = realloc (a->v, (a->n + 2) * sizeof *p);
  if (!p) {
    free (s);
    return;
  }
  a->v = p;
  a->v[a->n++] = s;
  a->v[a->n] = NULL;
}

static void
collect_prefixed (xmlNode *list, const char *prefix, struct strv *names, struct strv *morefs)
{
  for (xmlNode *t = list; t; t = v2k_xml_next (t)) {
    char *n = v2k_xml_child_text (t, "name");
    if (n && strncmp (n, prefix, strlen (prefix)) == 0) {
      push (morefs, v2k_xml_child_text (t, "snapshot"));
      push (names, n);
    }
    else
      free (n);
    collect_prefixed (v2k_xml_child (t, "childSnapshotList"), prefix, names, morefs);
  }
}

int
v2k_snapshot_list_prefixed (struct v2k_soap *s, const char *vm, const char *prefix,
                            char ***names, char ***morefs, struct v2k_error *err)
{
  static const char *const paths[] = { "snapshot", NULL };
  struct v2k_pc_result res = { 0 };
  if (v2k_pc_get (s, "VirtualMachine", vm, paths, &res, err) == -1)
    return -1;
  struct strv n = { calloc (1, sizeof (char *)), 0 }, m = { calloc (1, sizeof (char *)), 0 };
  xmlNode *snap = res.nobjs ? v2k_pc_prop (&res.objs[0], "snapshot") : NULL;
  collect_prefixed (v2k_xml_child (snap, "rootSnapshotList"), prefix, &n, &m);
  v2k_pc_result_free (&res);
  *names = n.v;
  *morefs = m.v;
  return 0;
}

void
v2k_strv_free (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

int
v2k_snapshot_read_disks (struct v2k_soap *s, const char *snapshot, const struct v2k_manifest *m,
                         struct v2k_snapshot *snap, struct v2k_error *err)
{
  static const char *const paths[] = { "config.hardware.device", NULL };
  struct v2k_pc_result res = { 0 };
  if (v2k_pc_get (s, "VirtualMachineSnapshot", snapshot, paths, &res, err) == -1)
    return -1;
  xmlNode *devices = res.nobjs ? v2k_pc_prop (&res.objs[0], "config.hardware.device") : NULL;
  snap->disks = calloc (m->n_disks ? m->n_disks : 1, sizeof *snap->disks);
  if (!snap->disks) {
    v2k_pc_result_free (&res);
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < m->n_disks; i++) {
    xmlNode *found = NULL;
    for (xmlNode *d = v2k_xml_child (devices, NULL); d && !found; d = v2k_xml_next (d)) {
      int64_t key;
      if (v2k_xml_type_is (d, "VirtualDisk") && v2k_xml_child_int64 (d, "key", &key) == 0 &&
          key == m->disks[i].key)
        found = d;
    }
    xmlNode *backing = v2k_xml_child (found, "backing");
    char *file = v2k_xml_child_text (backing, "fileName");
    if (!file) {
      v2k_pc_result_free (&res);
      v2k_error_set (err, V2K_EXIT_VSPHERE, "snapshot %s has no disk with key %lld (%s)",
                     snapshot, (long long) m->disks[i].key, m->disks[i].id);
      return -1;
    }
    struct v2k_snapshot_disk *sd = &snap->disks[snap->n_disks++];
    sd->key = m->disks[i].key;
    sd->file_name = file;
    sd->change_id = v2k_xml_child_text (backing, "changeId");
    if (sd->change_id && !*sd->change_id) {
      free (sd->change_id);
      sd->change_id = NULL;
    }
  }
  v2k_pc_result_free (&res);
  return 0;
}

int
v2k_snapshot_remove (struct v2k_soap *s, const char *snapshot, int timeout,
                     struct v2k_error *err)
{
  xmlDoc *doc;
  xmlNode *resp;
  if (v2k_soap_call (s, "RemoveSnapshot_Task", "VirtualMachineSnapshot", snapshot,
                     "<removeChildren>false</removeChildren><consolidate>true</consolidate>",
                     true, &doc, &resp, err) == -1)
    return -1;
  CLEANUP_FREE char *task = v2k_task_from_response (resp);
  xmlFreeDoc (doc);
  return v2k_task_wait (s, task, "removing snapshot", timeout, NULL, NULL, NULL, NULL, err);
}
