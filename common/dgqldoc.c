/* dgqldoc.c - checking GraphQL documents (see dgqldoc.h). The lexer follows the
 * GraphQL spec (October 2021), "Appendix B: Grammar Summary", lexical tokens. */
#include "dgqldoc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dgqllit.h"

#define DOC_MAX_DEPTH 256

void dgqldoc_lexer_init(struct dgqldoc_lexer *lx, const char *text, size_t len)
{
        lx->text = text;
        lx->len  = len;
        lx->pos  = 0;
        lx->line = 1;
}

static int doc_name_start(unsigned char c)
{
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int doc_digit(unsigned char c)
{
        return c >= '0' && c <= '9';
}

static int doc_hex(unsigned char c)
{
        return doc_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The byte at pos, or -1 past the end. */
static int doc_at(const struct dgqldoc_lexer *lx, size_t pos)
{
        return pos < lx->len ? (unsigned char)lx->text[pos] : -1;
}

/* Describes the byte c where a token was expected. */
static void doc_unexpected(int c, char *err, size_t errsize)
{
        if (c > 0x20 && c < 0x7f)
                snprintf(err, errsize, "unexpected character '%c'", c);
        else if (c >= 0x80)
                snprintf(err, errsize,
                         "unexpected byte 0x%02X (only ASCII outside strings and "
                         "comments)",
                         c);
        else
                snprintf(err, errsize, "unexpected control character U+%04X", c);
}

/* Checks that [from, to) is UTF-8 without control characters other than tab (and,
 * in a block string, line terminators, which move lx->line on). The offset in a
 * UTF-8 error counts bytes from the start of the line. */
static int doc_text(struct dgqldoc_lexer *lx, size_t from, size_t to, int block,
                    char *err, size_t errsize)
{
        size_t line_start = from;

        for (size_t i = from; i <= to; i++) {
                unsigned char c = i < to ? (unsigned char)lx->text[i] : '\n';
                if (c == '\n' || (c == '\r' && block)) {
                        if (dgqllit_check_utf8(lx->text + line_start, i - line_start,
                                               err, errsize)) {
                                /* again from the start of the line, for its offset */
                                size_t ls = line_start;
                                while (ls > 0 && lx->text[ls - 1] != '\n' &&
                                       lx->text[ls - 1] != '\r')
                                        ls--;
                                dgqllit_check_utf8(lx->text + ls, i - ls, err, errsize);
                                return -1;
                        }
                        if (i < to && !(c == '\r' && doc_at(lx, i + 1) == '\n'))
                                lx->line++;
                        line_start = i + 1;
                } else if (c < 0x20 && c != '\t') {
                        snprintf(err, errsize, "control character U+%04X in a %s", c,
                                 block ? "block string" : "string or comment");
                        return -1;
                }
        }
        return 0;
}

/* Reads four hex digits at pos into *v. */
static int doc_hex4(const struct dgqldoc_lexer *lx, size_t pos, unsigned long *v)
{
        *v = 0;
        for (size_t k = 0; k < 4; k++) {
                int c = doc_at(lx, pos + k);
                if (c < 0 || !doc_hex((unsigned char)c))
                        return -1;
                *v = *v << 4 | (unsigned long)(doc_digit((unsigned char)c)
                                                   ? c - '0'
                                                   : (c | 0x20) - 'a' + 10);
        }
        return 0;
}

/* The escape sequence at lx->pos (on the backslash) of a "string"; moves past it. */
static int doc_escape(struct dgqldoc_lexer *lx, char *err, size_t errsize)
{
        int c = doc_at(lx, lx->pos + 1);
        unsigned long v, lo;

        if (c >= 0 && strchr("\"\\/bfnrt", c) && c) {
                lx->pos += 2;
                return 0;
        }
        if (c != 'u') {
                snprintf(err, errsize, "invalid escape sequence in a string");
                return -1;
        }
        if (doc_at(lx, lx->pos + 2) == '{') { /* \u{1F600} */
                size_t k = lx->pos + 3;
                v        = 0;
                while (doc_at(lx, k) >= 0 && doc_hex((unsigned char)lx->text[k]) &&
                       v <= 0x10ffff) {
                        int h = (unsigned char)lx->text[k++];
                        v     = v << 4 | (unsigned long)(doc_digit((unsigned char)h)
                                                             ? h - '0'
                                                             : (h | 0x20) - 'a' + 10);
                }
                if (k == lx->pos + 3 || doc_at(lx, k) != '}' || v > 0x10ffff ||
                    (v >= 0xd800 && v <= 0xdfff)) {
                        snprintf(err, errsize, "invalid \\u{...} escape in a string");
                        return -1;
                }
                lx->pos = k + 1;
                return 0;
        }
        if (doc_hex4(lx, lx->pos + 2, &v)) {
                snprintf(err, errsize,
                         "invalid \\u escape in a string (want 4 hex "
                         "digits)");
                return -1;
        }
        lx->pos += 6;
        if (v >= 0xdc00 && v <= 0xdfff) {
                snprintf(err, errsize, "\\u%04lX: a trailing surrogate alone", v);
                return -1;
        }
        if (v >= 0xd800 && v <= 0xdbff) {
                if (doc_at(lx, lx->pos) != '\\' || doc_at(lx, lx->pos + 1) != 'u' ||
                    doc_hex4(lx, lx->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                        snprintf(err, errsize,
                                 "\\u%04lX: a leading surrogate without its trailing "
                                 "one",
                                 v);
                        return -1;
                }
                lx->pos += 6;
        }
        return 0;
}

static int doc_string(struct dgqldoc_lexer *lx, struct dgqldoc_token *t, char *err,
                      size_t errsize)
{
        size_t run = lx->pos + 1;

        t->kind = DGQLDOC_STRING;
        lx->pos++;
        for (;;) {
                int c = doc_at(lx, lx->pos);
                if (c < 0 || c == '\n' || c == '\r') {
                        snprintf(err, errsize, "unterminated string");
                        return -1;
                }
                if (c == '"')
                        break;
                if (c == '\\') {
                        if (doc_text(lx, run, lx->pos, 0, err, errsize) ||
                            doc_escape(lx, err, errsize))
                                return -1;
                        run = lx->pos;
                        continue;
                }
                lx->pos++;
        }
        if (doc_text(lx, run, lx->pos, 0, err, errsize))
                return -1;
        lx->pos++;
        return 0;
}

static int doc_block_string(struct dgqldoc_lexer *lx, struct dgqldoc_token *t,
                            char *err, size_t errsize)
{
        size_t from = lx->pos + 3;
        int line    = lx->line;

        t->kind = DGQLDOC_BLOCK_STRING;
        for (size_t i = from; i + 2 < lx->len; i++) {
                if (lx->text[i] == '\\' && i + 3 < lx->len &&
                    !memcmp(lx->text + i + 1, "\"\"\"", 3)) {
                        i += 3;
                        continue;
                }
                if (!memcmp(lx->text + i, "\"\"\"", 3)) {
                        if (doc_text(lx, from, i, 1, err, errsize))
                                return -1;
                        lx->pos = i + 3;
                        return 0;
                }
        }
        lx->line = line;
        snprintf(err, errsize, "unterminated block string");
        return -1;
}

static int doc_number(struct dgqldoc_lexer *lx, struct dgqldoc_token *t, char *err,
                      size_t errsize)
{
        size_t p = lx->pos;
        int c;

        t->kind = DGQLDOC_INT;
        if (doc_at(lx, p) == '-')
                p++;
        if (doc_at(lx, p) == '0') {
                p++;
                if (doc_at(lx, p) >= 0 && doc_digit((unsigned char)lx->text[p])) {
                        snprintf(err, errsize, "a number with a leading zero");
                        return -1;
                }
        } else if (doc_at(lx, p) >= 0 && doc_digit((unsigned char)lx->text[p])) {
                while (doc_at(lx, p) >= 0 && doc_digit((unsigned char)lx->text[p]))
                        p++;
        } else {
                snprintf(err, errsize, "'-' without a number");
                return -1;
        }
        if (doc_at(lx, p) == '.') {
                t->kind = DGQLDOC_FLOAT;
                if (!(doc_at(lx, ++p) >= 0 && doc_digit((unsigned char)lx->text[p]))) {
                        snprintf(err, errsize, "a number without digits after '.'");
                        return -1;
                }
                while (doc_at(lx, p) >= 0 && doc_digit((unsigned char)lx->text[p]))
                        p++;
        }
        if (doc_at(lx, p) == 'e' || doc_at(lx, p) == 'E') {
                t->kind = DGQLDOC_FLOAT;
                p++;
                if (doc_at(lx, p) == '+' || doc_at(lx, p) == '-')
                        p++;
                if (!(doc_at(lx, p) >= 0 && doc_digit((unsigned char)lx->text[p]))) {
                        snprintf(err, errsize,
                                 "a number without digits in its "
                                 "exponent");
                        return -1;
                }
                while (doc_at(lx, p) >= 0 && doc_digit((unsigned char)lx->text[p]))
                        p++;
        }
        c = doc_at(lx, p);
        if (c == '.' || (c >= 0 && doc_name_start((unsigned char)c))) {
                snprintf(err, errsize, "a number followed by '%c'", c);
                return -1;
        }
        lx->pos = p;
        return 0;
}

/* Skips what is insignificant: white space, line terminators, commas, comments and a
 * byte order mark. */
static int doc_skip(struct dgqldoc_lexer *lx, char *err, size_t errsize)
{
        for (;;) {
                int c = doc_at(lx, lx->pos);
                if (c == ' ' || c == '\t' || c == ',') {
                        lx->pos++;
                } else if (c == '\n') {
                        lx->pos++;
                        lx->line++;
                } else if (c == '\r') {
                        lx->pos += doc_at(lx, lx->pos + 1) == '\n' ? 2 : 1;
                        lx->line++;
                } else if (c == 0xef && lx->pos + 2 < lx->len &&
                           !memcmp(lx->text + lx->pos, "\xef\xbb\xbf", 3)) {
                        lx->pos += 3;
                } else if (c == '#') {
                        size_t from = lx->pos + 1;
                        while (doc_at(lx, lx->pos) >= 0 && lx->text[lx->pos] != '\n' &&
                               lx->text[lx->pos] != '\r')
                                lx->pos++;
                        if (doc_text(lx, from, lx->pos, 0, err, errsize))
                                return -1;
                } else {
                        return 0;
                }
        }
}

int dgqldoc_next(struct dgqldoc_lexer *lx, struct dgqldoc_token *t, char *err,
                 size_t errsize)
{
        int c, rc = 0;

        if (doc_skip(lx, err, errsize))
                return -1;
        c       = doc_at(lx, lx->pos);
        t->off  = lx->pos;
        t->line = lx->line;
        t->kind = DGQLDOC_END;
        if (c < 0) {
                t->len = 0;
                return 0;
        }
        if (strchr("!$&()]:=@[{|}", c) && c) {
                t->kind = DGQLDOC_PUNCT;
                lx->pos++;
        } else if (c == '.') {
                if (doc_at(lx, lx->pos + 1) != '.' || doc_at(lx, lx->pos + 2) != '.') {
                        snprintf(err, errsize, "'.' that does not start '...'");
                        return -1;
                }
                t->kind = DGQLDOC_PUNCT;
                lx->pos += 3;
        } else if (doc_name_start((unsigned char)c)) {
                t->kind = DGQLDOC_NAME;
                while (++lx->pos < lx->len &&
                       (doc_name_start((unsigned char)lx->text[lx->pos]) ||
                        doc_digit((unsigned char)lx->text[lx->pos])))
                        ;
        } else if (c == '-' || doc_digit((unsigned char)c)) {
                rc = doc_number(lx, t, err, errsize);
        } else if (c == '"') {
                rc = lx->pos + 2 < lx->len && !memcmp(lx->text + lx->pos, "\"\"\"", 3)
                         ? doc_block_string(lx, t, err, errsize)
                         : doc_string(lx, t, err, errsize);
        } else {
                doc_unexpected(c, err, errsize);
                return -1;
        }
        if (rc)
                return -1;
        t->len = lx->pos - t->off;
        return 0;
}

static int doc_is(const struct dgqldoc_lexer *lx, const struct dgqldoc_token *t,
                  const char *s)
{
        size_t n = strlen(s);

        return t->kind != DGQLDOC_END && t->len == n &&
               !memcmp(lx->text + t->off, s, n);
}

/* The walk over a document's tokens that dgqldoc_parse() and the finders share: the
 * lexer, the open brackets, and whether each is a selection set. */
struct doc_walk {
        struct dgqldoc_lexer lx;
        const char *path;
        int depth;
        char open[DOC_MAX_DEPTH];
        int open_line[DOC_MAX_DEPTH];
        int values; /* open ( and [ (inside them, { is an object value) */
        char *err;
        size_t errsize;
};

__attribute__((format(printf, 3, 4))) static int doc_fail(struct doc_walk *w, int line,
                                                          const char *fmt, ...);

static int doc_fail(struct doc_walk *w, int line, const char *fmt, ...)
{
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(w->err, w->errsize, "%s:%d: %s", w->path, line, what);
        return -1;
}

/* The next token, keeping count of the brackets (an error for an unbalanced one). */
static int doc_step(struct doc_walk *w, struct dgqldoc_token *t)
{
        char why[200];
        char c;

        if (dgqldoc_next(&w->lx, t, why, sizeof(why)))
                return doc_fail(w, w->lx.line, "%s", why);
        if (t->kind == DGQLDOC_END) {
                if (w->depth)
                        return doc_fail(w, w->open_line[w->depth - 1],
                                        "'%c' is never closed", w->open[w->depth - 1]);
                return 0;
        }
        if (t->kind != DGQLDOC_PUNCT || t->len != 1)
                return 0;
        c = w->lx.text[t->off];
        if (c == '(' || c == '[' || c == '{') {
                if (w->depth == DOC_MAX_DEPTH)
                        return doc_fail(w, t->line, "nested deeper than %d",
                                        DOC_MAX_DEPTH);
                w->open[w->depth]      = c;
                w->open_line[w->depth] = t->line;
                w->depth++;
                w->values += c != '{';
        } else if (c == ')' || c == ']' || c == '}') {
                char want = c == ')' ? '(' : c == ']' ? '[' : '{';
                if (!w->depth)
                        return doc_fail(w, t->line, "'%c' without an opening '%c'", c,
                                        want);
                if (w->open[w->depth - 1] != want)
                        return doc_fail(
                            w, t->line, "'%c' closes '%c' opened at line %d", c,
                            w->open[w->depth - 1], w->open_line[w->depth - 1]);
                w->depth--;
                w->values -= c != '}';
        }
        return 0;
}

static void doc_walk_init(struct doc_walk *w, const char *text, size_t len,
                          const char *path, char *err, size_t errsize)
{
        memset(w, 0, sizeof(*w));
        dgqldoc_lexer_init(&w->lx, text, len);
        w->path    = path;
        w->err     = err;
        w->errsize = errsize;
}

int dgqldoc_parse(const char *text, size_t len, const char *path, struct dgqldoc_op *op,
                  char *err, size_t errsize)
{
        struct doc_walk w;
        struct dgqldoc_token t;
        struct dgqldoc_op found = {0}, own;
        int ops                 = 0;
        /* At the top level: 0 between definitions (or after a selection set closed),
         * 1 in the head of a definition, 2 right after the keyword of an operation
         * (its name must come). */
        int state = 0;

        if (!op)
                op = &own;
        memset(op, 0, sizeof(*op));
        doc_walk_init(&w, text, len, path, err, errsize);
        for (;;) {
                int depth = w.depth, mutation;
                if (doc_step(&w, &t))
                        return -1;
                if (t.kind == DGQLDOC_END)
                        break;
                if (depth > 0)
                        continue;
                switch (state) {
                case 0:
                        mutation = doc_is(&w.lx, &t, "mutation");
                        if (doc_is(&w.lx, &t, "fragment")) {
                                state = 1;
                                break;
                        }
                        if (doc_is(&w.lx, &t, "{"))
                                return doc_fail(&w, t.line,
                                                "an operation without a name (write "
                                                "query Name { ... })");
                        if (doc_is(&w.lx, &t, "subscription"))
                                return doc_fail(&w, t.line,
                                                "a subscription (want a query or a "
                                                "mutation)");
                        if (!mutation && !doc_is(&w.lx, &t, "query"))
                                return doc_fail(
                                    &w, t.line,
                                    "'%.*s' where a query or mutation should "
                                    "start",
                                    (int)(t.len > 40 ? 40 : t.len), text + t.off);
                        if (ops++)
                                return doc_fail(&w, t.line,
                                                "a second operation (the first starts "
                                                "at line %d); want exactly one",
                                                found.line);
                        found.mutation = mutation;
                        found.line     = t.line;
                        state          = 2;
                        break;
                case 2:
                        if (t.kind != DGQLDOC_NAME)
                                return doc_fail(&w, t.line,
                                                "an operation without a name (write "
                                                "%s Name ...)",
                                                found.mutation ? "mutation" : "query");
                        found.name     = text + t.off;
                        found.name_len = t.len;
                        state          = 1;
                        break;
                default:
                        /* a head: names (fragment type, directives), @, and the
                         * ( ... ) skipped above; { starts the selection set, after
                         * which the next token at this level starts a definition */
                        if (doc_is(&w.lx, &t, "{"))
                                state = 0;
                        else if (t.kind != DGQLDOC_NAME && !doc_is(&w.lx, &t, "@") &&
                                 !doc_is(&w.lx, &t, "("))
                                return doc_fail(&w, t.line,
                                                "unexpected '%.*s' before the "
                                                "selection set",
                                                (int)(t.len > 40 ? 40 : t.len),
                                                text + t.off);
                }
        }
        if (state != 0)
                return doc_fail(&w, w.lx.line,
                                "the document ends before the selection set of its "
                                "last definition");
        if (!ops)
                return doc_fail(&w, w.lx.line, "no query or mutation in the document");
        *op = found;
        return 0;
}

int dgqldoc_check(const char *text, size_t len, const char *path, char *err,
                  size_t errsize)
{
        return dgqldoc_parse(text, len, path, NULL, err, errsize);
}

int dgqldoc_placeholder(const char *text, size_t len, const char *path,
                        const char *name, size_t *off, char *err, size_t errsize)
{
        struct doc_walk w;
        struct dgqldoc_token t, prev = {0};
        int seen = 0, first_line = 0;

        doc_walk_init(&w, text, len, path, err, errsize);
        for (;;) {
                if (doc_step(&w, &t))
                        return -1;
                if (t.kind == DGQLDOC_END)
                        break;
                if (t.kind == DGQLDOC_NAME && doc_is(&w.lx, &prev, "$") &&
                    prev.off + 1 == t.off && doc_is(&w.lx, &t, name)) {
                        if (seen++)
                                return doc_fail(&w, t.line,
                                                "$%s a second time (first at line %d): "
                                                "it is a placeholder the command fills "
                                                "with a literal, never a declared "
                                                "variable",
                                                name, first_line);
                        first_line = t.line;
                        *off       = prev.off;
                }
                prev = t;
        }
        if (!seen)
                return doc_fail(&w, 1, "no $%s placeholder in the document", name);
        return 0;
}

int dgqldoc_leaf_field(const char *text, size_t len, const char *path, const char *name,
                       size_t *off, size_t *flen, char *err, size_t errsize)
{
        struct doc_walk w;
        struct dgqldoc_token t, prev = {0}, cand = {0};
        int seen = 0, pending = 0, first_line = 0;

        doc_walk_init(&w, text, len, path, err, errsize);
        for (;;) {
                int in_selection = w.depth > 0 && !w.values;
                if (doc_step(&w, &t))
                        return -1;
                if (pending) { /* cand was a field named name: is it plain? */
                        pending = 0;
                        if (t.kind == DGQLDOC_PUNCT &&
                            (doc_is(&w.lx, &t, ":") || doc_is(&w.lx, &t, "(") ||
                             doc_is(&w.lx, &t, "@") || doc_is(&w.lx, &t, "{")))
                                return doc_fail(
                                    &w, cand.line,
                                    "the field %s must be plain (no alias, "
                                    "arguments, directives or selection): "
                                    "the command leaves it out when the API "
                                    "has no such field",
                                    name);
                        if (seen++)
                                return doc_fail(&w, cand.line,
                                                "the field %s a second time (first at "
                                                "line %d)",
                                                name, first_line);
                        first_line = cand.line;
                        *off       = cand.off;
                        *flen      = cand.len;
                }
                if (t.kind == DGQLDOC_END)
                        break;
                if (in_selection && t.kind == DGQLDOC_NAME && doc_is(&w.lx, &t, name)) {
                        if (doc_is(&w.lx, &prev, ":"))
                                return doc_fail(&w, t.line,
                                                "the field %s under an alias: it must "
                                                "be plain",
                                                name);
                        if (!doc_is(&w.lx, &prev, "...") &&
                            !doc_is(&w.lx, &prev, "on") && !doc_is(&w.lx, &prev, "@")) {
                                cand    = t;
                                pending = 1;
                        }
                }
                prev = t;
        }
        return seen ? 1 : 0;
}
