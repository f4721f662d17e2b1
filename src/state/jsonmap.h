/* A table-driven mapping between C structs and JSON objects (jansson).
 * Each struct has a schema: one row per field with its JSON name, kind,
 * offset and whether it is required. One loader and one dumper walk these
 * tables, so the manifest's strict validation lives in one place and every
 * error names the field's path (for example "disks[1].capacity"). */
#ifndef V2K_JSONMAP_H
#define V2K_JSONMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "../util/error.h"

enum jm_kind {
  JM_STR,      /* char *, a non-null string */
  JM_OPTSTR,   /* char *, a string or null */
  JM_INT,      /* int64_t, a non-negative integer */
  JM_BOOL,     /* bool */
  JM_ENUM,     /* int, index into enum_values; a string in JSON */
  JM_OBJ,      /* an embedded struct described by sub */
  JM_OPTOBJ,   /* a pointer to a struct described by sub, or null */
  JM_ARR,      /* a pointer to an array of sub structs; count at count_offset */
  JM_KVMAP,    /* struct jm_kv *, a JSON object of string values; count at count_offset */
};

struct jm_kv { char *key; char *value; };

struct jm_schema;

struct jm_field {
  const char *name;
  enum jm_kind kind;
  size_t offset;
  bool required;
  const struct jm_schema *sub;
  const char *const *enum_values;   /* NULL-terminated */
  size_t count_offset;
};

struct jm_schema {
  const char *name;
  size_t size;
  const struct jm_field *fields;
  size_t nfields;
};

/* Fills the zeroed struct at OUT from OBJ. Unknown keys, missing required
 * fields and wrong types are errors naming PATH.field. */
int jm_load (const struct jm_schema *schema, json_t *obj, void *out,
             const char *path, struct v2k_error *err);
/* Builds a JSON object with every field of the struct at IN. */
json_t *jm_dump (const struct jm_schema *schema, const void *in);
/* Frees what jm_load allocated inside the struct (not the struct itself). */
void jm_free (const struct jm_schema *schema, void *in);

#define JM_FIELD(type, member, k, req) \
  { .name = #member, .kind = (k), .offset = offsetof (type, member), .required = (req) }
#define JM_SUBFIELD(type, member, k, req, schema) \
  { .name = #member, .kind = (k), .offset = offsetof (type, member), .required = (req), .sub = &(schema) }
#define JM_ENUMFIELD(type, member, req, values) \
  { .name = #member, .kind = JM_ENUM, .offset = offsetof (type, member), .required = (req), .enum_values = (values) }
#define JM_ARRFIELD(type, member, count, req, schema) \
  { .name = #member, .kind = JM_ARR, .offset = offsetof (type, member), .required = (req), \
    .sub = &(schema), .count_offset = offsetof (type, count) }
#define JM_MAPFIELD(type, member, count, req) \
  { .name = #member, .kind = JM_KVMAP, .offset = offsetof (type, member), .required = (req), \
    .count_offset = offsetof (type, count) }
#define JM_SCHEMA(type, table) \
  { .name = #type, .size = sizeof (type), .fields = (table), .nfields = sizeof (table) / sizeof ((table)[0]) }

/* The index of S in a NULL-terminated list, or -1. */
int jm_enum_index (const char *const *values, const char *s);

#endif
