/* dgqllit.h - writing GraphQL input values as literals (GraphQL spec, "Input Values"):
 * strings, enum values, booleans, null, lists and objects, for documents that take
 * their input inline (`create(input: { name: "x" events: [ITEM_CREATE] })`) instead of
 * through variables of a named input type.
 *
 * Strings: `"` and `\` are escaped, every control character U+0000-U+001F as a short
 * escape (\b \f \n \r \t) or \u00XX, U+007F as \u007F; every other character is
 * written as itself in UTF-8 (also those outside the BMP, which one \uXXXX cannot
 * name). Text that is not valid UTF-8 is refused with the offset of the bad byte.
 * Enum values and object keys must be GraphQL names ([_A-Za-z][_0-9A-Za-z]*), and an
 * enum value none of true, false, null: nothing else is ever written unquoted.
 *
 * Usage: a struct dgqllit appends to a struct dbuf the caller owns. Errors are sticky:
 * the first one is kept, every later call does nothing, and dgqllit_end() reports it
 * (also a list or object left open):
 *
 *     dgqllit_init(&w, &buf);
 *     dgqllit_object(&w);
 *     dgqllit_key(&w, "name");
 *     dgqllit_string(&w, name, strlen(name));
 *     dgqllit_close(&w);
 *     if (dgqllit_end(&w, err, sizeof(err))) ...   (buf holds {name: "..."})
 */
#ifndef DGQLLIT_H
#define DGQLLIT_H

#include <stddef.h>

#include "dbuf.h"

#define DGQLLIT_MAX_DEPTH 32

struct dgqllit {
        struct dbuf *out;                /* borrowed */
        int depth;                       /* lists and objects open */
        char open[DGQLLIT_MAX_DEPTH];    /* '[' or '{' for each */
        char members[DGQLLIT_MAX_DEPTH]; /* 1 once one was written in it */
        int keyed;  /* in an object: a key was written, its value comes next */
        int values; /* values written at the top level */
        int failed; /* 1 after the first error */
        char err[256];
};

void dgqllit_init(struct dgqllit *w, struct dbuf *out);

/* Values: at the top level, as an item of the open list, or after a key. */
void dgqllit_object(struct dgqllit *w); /* { */
void dgqllit_list(struct dgqllit *w);   /* [ */
void dgqllit_close(struct dgqllit *w);  /* closes the innermost: } or ] */
void dgqllit_string(struct dgqllit *w, const char *s, size_t len);
void dgqllit_enum(struct dgqllit *w, const char *s, size_t len);
void dgqllit_bool(struct dgqllit *w, int v);
void dgqllit_null(struct dgqllit *w);

/* The key of the next value, in the open object (a GraphQL name). */
void dgqllit_key(struct dgqllit *w, const char *name);

/* Returns 0 when everything written is one complete value, else -1 with err set
 * (the first error, e.g. "invalid UTF-8: byte 0xFF at offset 3 cannot start a
 * character"). The writer may then be reused after dgqllit_init(). */
int dgqllit_end(struct dgqllit *w, char *err, size_t errsize);

/* The checks the writer makes, for callers that refuse input before writing: return
 * 0, or -1 with a one-line err that quotes no byte of s other than one printable
 * ASCII character (so s may come from anyone). */
int dgqllit_check_utf8(const char *s, size_t len, char *err, size_t errsize);
int dgqllit_check_name(const char *s, size_t len, char *err, size_t errsize);
int dgqllit_check_enum(const char *s, size_t len, char *err, size_t errsize);

#endif
