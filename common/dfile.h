/* dfile.h - reading a small file whole: settings files, GraphQL documents, PEM files,
 * secrets; and splitting a line of a table file (the event and log tables) into words.
 * The contents are read into one allocation of the file's size, never grown and copied,
 * so a secret read here leaves no stray copies behind in freed memory. */
#ifndef DFILE_H
#define DFILE_H

#include <stddef.h>
#include <sys/stat.h>

/* Reads the file at path (at most max bytes) into a malloc'd, NUL-terminated buffer
 * that the caller owns (wipe it first when it holds a secret). *len gets its length;
 * st, when not NULL, the file's identity (fstat of the descriptor read). Returns NULL
 * with a one-line err naming the path ("cannot open ...", "... larger than N bytes",
 * "cannot read ..."). An empty file is not an error. */
char *dfile_read(const char *path, size_t max, size_t *len, struct stat *st, char *err,
                 size_t errsize);

/* Splits line (modified: blanks become NULs) into at most max blank-separated words
 * (spaces, tabs, CRs); returns the count, or max + 1 when there are more. */
int dfile_words(char *line, char **w, int max);

#endif
