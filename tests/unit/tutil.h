/* tutil.h - helpers shared by the unit tests of the common modules: NULL-terminated
 * string lists (argv and envp for dconf_load), the number of elements of an array,
 * and capturing what a call writes to stdout or stderr. The functions fail the
 * running cmocka test on a system error; they free nothing they did not allocate. */
#ifndef TUTIL_H
#define TUTIL_H

#include <stddef.h>

/* A NULL-terminated list literal of strings; TU_ARGS for the arguments after the
 * program name, TU_ENV for environment entries ("NAME=value"). */
#define TU_LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
#define TU_ARGS      TU_LIST
#define TU_ENV       TU_LIST

#define TU_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Fills out (room for cap pointers) with first, when not NULL, then each string of the
 * NULL-terminated list (NULL for none), then NULL; returns how many strings it put
 * (argc for an argv). The strings are borrowed, not copied. */
int tutil_vec(char **out, size_t cap, const char *first, const char *const *list);

/* Output of a file descriptor (STDOUT_FILENO or STDERR_FILENO) sent to a temporary
 * file between tutil_capture_begin and tutil_capture_end; end puts it back, copies
 * at most outsize - 1 bytes of what was written into out (NUL-terminated) and removes
 * the file. */
struct tutil_capture {
        int fd;    /* the descriptor captured */
        int saved; /* a copy of what it was */
        int tmp;   /* the (already unlinked) temporary file */
};

void tutil_capture_begin(struct tutil_capture *c, int fd);
void tutil_capture_end(struct tutil_capture *c, char *out, size_t outsize);

#endif
