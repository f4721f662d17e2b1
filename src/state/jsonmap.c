#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonmap.h"

#define AT(base, off, type) ((type *) ((char *) (base) + (off)))
#define CAT(base, off, type) ((const type *) ((const char *) (base) + (off)))

int
jm_enum_index (const char *const *values, const char *s)
{
  for (int i = 0; values[i]; i++)
    if (strcmp (values[i], s) == 0)
      return i;
  return -1;
}

static const char *
json_type_name (const json_t *v)
{
  switch (json_typeof (v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE: case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "unknown";
}

static void
join_path (char *buf, size_t len, const char *path, const char *name)
{
  if (path && *path)
    snprintf (buf, len, "%s.%s", path, name);
  else
    snprintf (buf, len, "%s", name);
}

static int
type_error (struct v2k_error *err, const char *path, const char *want, const json_t *got)
{
  v2k_error_set (err, V2K_EXIT_WORKDIR, "%s: expected %s, got %s", path, want,
                 json_type_name (got));
  return -1;
}

static int load_field (const struct jm_field *f, json_t *v, void *out,
                       const char *path, struct v2k_error *err);

int
jm_load (const struct jm_schema *schema, json_t *obj, void *out,
         const char *path, struct v2k_error *err)
{
  char sub[512];
  if (!json_is_object (obj))
    return type_error (err, path && *path ? path : "(top level)", "an object", obj);

  const char *key;
  json_t *value;
  json_object_foreach (obj, key, value) {
    size_t i;
    for (i = 0; i < schema->nfields; i++)
      if (strcmp (schema->fields[i].name, key) == 0)
        break;
    if (i == schema->nfields) {
      join_path (sub, sizeof sub, path, key);
      v2k_error_set (err, V2K_EXIT_WORKDIR, "%s: unknown field", sub);
      return -1;
    }
  }

  for (size_t i = 0; i < schema->nfields; i++) {
    const struct jm_field *f = &schema->fields[i];
    json_t *v = json_object_get (obj, f->name);
    join_path (sub, sizeof sub, path, f->name);
    if (!v) {
      if (f->required) {
        v2k_error_set (err, V2K_EXIT_WORKDIR, "%s: required field is missing", sub);
        return -1;
      }
      continue;
    }
    if (load_field (f, v, out, sub, err) == -1)
      return -1;
  }
  return 0;
}

static char *
dup_or_fail (const char *s, struct v2k_error *err)
{
  char *r = strdup (s);
  if (!r)
    v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
  return r;
}

static int
load_field (const struct jm_field *f, json_t *v, void *out, const char *path,
            struct v2k_error *err)
{
  switch (f->kind) {
  case JM_STR:
  case JM_OPTSTR:
    if (json_is_null (v) && f->kind == JM_OPTSTR)
      return 0;
    if (!json_is_string (v))
      return type_error (err, path, f->kind == JM_STR ? "a string" : "a string or null", v);
    if (!(*AT (out, f->offset, char *) = dup_or_fail (json_string_value (v), err)))
      return -1;
    return 0;

  case JM_INT:
    if (!json_is_integer (v))
      return type_error (err, path, "an integer", v);
    if (json_integer_value (v) < 0) {
      v2k_error_set (err, V2K_EXIT_WORKDIR, "%s: must not be negative (got %lld)",
                     path, (long long) json_integer_value (v));
      return -1;
    }
    *AT (out, f->offset, int64_t) = json_integer_value (v);
    return 0;

  case JM_BOOL:
    if (!json_is_boolean (v))
      return type_error (err, path, "a boolean", v);
    *AT (out, f->offset, bool) = json_is_true (v);
    return 0;

  case JM_ENUM: {
    if (!json_is_string (v))
      return type_error (err, path, "a string", v);
    int idx = jm_enum_index (f->enum_values, json_string_value (v));
    if (idx < 0) {
      char allowed[256] = "";
      for (int i = 0; f->enum_values[i]; i++) {
        size_t n = strlen (allowed);
        snprintf (allowed + n, sizeof allowed - n, "%s%s", i ? ", " : "", f->enum_values[i]);
      }
      v2k_error_set (err, V2K_EXIT_WORKDIR, "%s: \"%s\" is not one of %s", path,
                     json_string_value (v), allowed);
      return -1;
    }
    *AT (out, f->offset, int) = idx;
    return 0;
  }

  case JM_OBJ:
    return jm_load (f->sub, v, AT (out, f->offset, char), path, err);

  case JM_OPTOBJ: {
    if (json_is_null (v))
      return 0;
    void *p = calloc (1, f->sub->size);
    if (!p) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    *AT (out, f->offset, void *) = p;
    return jm_load (f->sub, v, p, path, err);
  }

  case JM_ARR: {
    if (!json_is_array (v))
      return type_error (err, path, "an array", v);
    size_t n = json_array_size (v);
    char *items = calloc (n ? n : 1, f->sub->size);
    if (!items) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    *AT (out, f->offset, void *) = items;
    for (size_t i = 0; i < n; i++) {
      char sub[512];
      snprintf (sub, sizeof sub, "%s[%zu]", path, i);
      /* Count only loaded elements so that jm_free frees exactly those. */
      *AT (out, f->count_offset, size_t) = i + 1;
      if (jm_load (f->sub, json_array_get (v, i), items + i * f->sub->size, sub, err) == -1)
        return -1;
    }
    *AT (out, f->count_offset, size_t) = n;
    return 0;
  }

  case JM_KVMAP: {
    if (!json_is_object (v))
      return type_error (err, path, "an object", v);
    size_t n = json_object_size (v);
    struct jm_kv *kv = calloc (n ? n : 1, sizeof *kv);
    if (!kv) {
      v2k_error_set (err, V2K_EXIT_INTERNAL, "out of memory");
      return -1;
    }
    *AT (out, f->offset, struct jm_kv *) = kv;
    const char *key;
    json_t *val;
    size_t i = 0;
    json_object_foreach (v, key, val) {
      char sub[512];
      snprintf (sub, sizeof sub, "%s.%s", path, key);
      if (!json_is_string (val))
        return type_error (err, sub, "a string", val);
      *AT (out, f->count_offset, size_t) = i + 1;
      kv[i].key = dup_or_fail (key, err);
      kv[i].value = dup_or_fail (json_string_value (val), err);
      if (!kv[i].key || !kv[i].value)
        return -1;
      i++;
    }
    return 0;
  }
  }
  return -1;
}

static json_t *
dump_field (const struct jm_field *f, const void *in)
{
  switch (f->kind) {
  case JM_STR:
  case JM_OPTSTR: {
    const char *s = *CAT (in, f->offset, char *);
    if (!s)
      return f->kind == JM_STR ? json_string ("") : json_null ();
    return json_string (s);
  }
  case JM_INT:
    return json_integer (*CAT (in, f->offset, int64_t));
  case JM_BOOL:
    return json_boolean (*CAT (in, f->offset, bool));
  case JM_ENUM:
    return json_string (f->enum_values[*CAT (in, f->offset, int)]);
  case JM_OBJ:
    return jm_dump (f->sub, CAT (in, f->offset, char));
  case JM_OPTOBJ: {
    const void *p = *CAT (in, f->offset, void *);
    return p ? jm_dump (f->sub, p) : json_null ();
  }
  case JM_ARR: {
    const char *items = *CAT (in, f->offset, char *);
    size_t n = *CAT (in, f->count_offset, size_t);
    json_t *arr = json_array ();
    for (size_t i = 0; arr && i < n; i++)
      json_array_append_new (arr, jm_dump (f->sub, items + i * f->sub->size));
    return arr;
  }
  case JM_KVMAP: {
    const struct jm_kv *kv = *CAT (in, f->offset, struct jm_kv *);
    size_t n = *CAT (in, f->count_offset, size_t);
    json_t *obj = json_object ();
    for (size_t i = 0; obj && i < n; i++)
      json_object_set_new (obj, kv[i].key, json_string (kv[i].value));
    return obj;
  }
  }
  return json_null ();
}

json_t *
jm_dump (const struct jm_schema *schema, const void *in)
{
  json_t *obj = json_object ();
  if (!obj)
    return NULL;
  for (size_t i = 0; i < schema->nfields; i++)
    json_object_set_new (obj, schema->fields[i].name, dump_field (&schema->fields[i], in));
  return obj;
}

void
jm_free (const struct jm_schema *schema, void *in)
{
  for (size_t i = 0; i < schema->nfields; i++) {
    const struct jm_field *f = &schema->fields[i];
    switch (f->kind) {
    case JM_STR:
    case JM_OPTSTR:
      free (*AT (in, f->offset, char *));
      *AT (in, f->offset, char *) = NULL;
      break;
    case JM_OBJ:
      jm_free (f->sub, AT (in, f->offset, char));
      break;
    case JM_OPTOBJ: {
      void *p = *AT (in, f->offset, void *);
      if (p) {
        jm_free (f->sub, p);
        free (p);
      }
      *AT (in, f->offset, void *) = NULL;
      break;
    }
    case JM_ARR: {
      char *items = *AT (in, f->offset, char *);
      size_t n = *AT (in, f->count_offset, size_t);
      for (size_t j = 0; j < n; j++)
        jm_free (f->sub, items + j * f->sub->size);
      free (items);
      *AT (in, f->offset, char *) = NULL;
      *AT (in, f->count_offset, size_t) = 0;
      break;
    }
    case JM_KVMAP: {
      struct jm_kv *kv = *AT (in, f->offset, struct jm_kv *);
      size_t n = *AT (in, f->count_offset, size_t);
      for (size_t j = 0; j < n; j++) {
        free (kv[j].key);
        free (kv[j].value);
      }
      free (kv);
      *AT (in, f->offset, struct jm_kv *) = NULL;
      *AT (in, f->count_offset, size_t) = 0;
      break;
    }
    default:
      break;
    }
  }
}
