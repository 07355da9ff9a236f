/* dgqldoc.h - checking a GraphQL document read from a file before it is ever sent: a
 * lexer that follows the GraphQL spec's lexical grammar (names, punctuators, numbers,
 * strings, block strings; white space, line terminators, comments, commas and a byte
 * order mark are insignificant), balanced ( [ {, and exactly one operation, a named
 * query or mutation (fragments may come with it). Every error names the place as
 * "<path>:<line>: <what>" (an offset in <what> counts bytes from the start of the
 * line).
 *
 * It checks the form, not the schema: the API validates the fields. Plain functions
 * over borrowed text (no state, nothing allocated), for the admin CLI's documents and
 * the enricher's queries alike.
 *
 * The admin CLI's documents also hold placeholders: `$input` written where the CLI
 * puts a literal (see dgqllit.h). dgqldoc_placeholder() finds one (the tokens `$` and
 * the name, never inside a string or a comment), and dgqldoc_leaf_field() finds a
 * field that may be cut out of a selection set. */
#ifndef DGQLDOC_H
#define DGQLDOC_H

#include <stddef.h>

enum dgqldoc_kind {
        DGQLDOC_END = 0, /* end of the document */
        DGQLDOC_PUNCT,   /* ! $ & ( ) ... : = @ [ ] { | } */
        DGQLDOC_NAME,
        DGQLDOC_INT,
        DGQLDOC_FLOAT,
        DGQLDOC_STRING,       /* "..." (off/len include the quotes) */
        DGQLDOC_BLOCK_STRING, /* """...""" */
};

struct dgqldoc_token {
        enum dgqldoc_kind kind;
        size_t off, len; /* the token's bytes in the text */
        int line;        /* 1-based line of its first byte */
};

struct dgqldoc_lexer {
        const char *text; /* borrowed */
        size_t len, pos;
        int line;
};

void dgqldoc_lexer_init(struct dgqldoc_lexer *lx, const char *text, size_t len);

/* The next significant token into *t (DGQLDOC_END at the end). Returns 0, or -1 with
 * err saying what is wrong (without the place) and lx->line its line. */
int dgqldoc_next(struct dgqldoc_lexer *lx, struct dgqldoc_token *t, char *err,
                 size_t errsize);

/* The document's one operation. */
struct dgqldoc_op {
        int mutation;     /* 1: a mutation, 0: a query */
        const char *name; /* its name, borrowed from the text (not NUL-terminated) */
        size_t name_len;
        int line; /* where it starts */
};

/* Checks text (len bytes; path is only for messages). Returns 0, or -1 with err
 * "<path>:<line>: <what>", e.g. "x.graphql:7: '}' closes '(' opened at line 5". */
int dgqldoc_check(const char *text, size_t len, const char *path, char *err,
                  size_t errsize);

/* dgqldoc_check(), and the operation into *op (when not NULL). */
int dgqldoc_parse(const char *text, size_t len, const char *path, struct dgqldoc_op *op,
                  char *err, size_t errsize);

/* Finds the placeholder $name, which must appear exactly once (a document that also
 * declares it as a variable holds it twice). *off gets the offset of its `$`; it
 * spans 1 + strlen(name) bytes. Returns 0, or -1 with err "<path>:<line>: ..." (line
 * 1 when it is missing). */
int dgqldoc_placeholder(const char *text, size_t len, const char *path,
                        const char *name, size_t *off, char *err, size_t errsize);

/* Finds the field name in a selection set when it is a plain leaf (no alias, no
 * arguments, no directives, no selection of its own), so that blanking its bytes
 * leaves a document that asks for everything else. Returns 1 with *off and *flen set
 * when it is there once, 0 when it is not there, -1 with err when it is there more
 * than once or not plain. */
int dgqldoc_leaf_field(const char *text, size_t len, const char *path, const char *name,
                       size_t *off, size_t *flen, char *err, size_t errsize);

#endif
