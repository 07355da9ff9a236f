/* tutil.c - helpers shared by the unit tests of the common modules (see tutil.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "tutil.h"

int tutil_vec(char **out, size_t cap, const char *first, const char *const *list)
{
        size_t n = 0;

        if (first)
                out[n++] = (char *)first;
        for (; list && *list; list++) {
                if (n + 1 >= cap)
                        fail_msg("tutil_vec: more than %zu strings", cap - 1);
                out[n++] = (char *)*list;
        }
        out[n] = NULL;
        return (int)n;
}

void tutil_capture_begin(struct tutil_capture *c, int fd)
{
        char tmpl[] = "/tmp/tutil_capture_XXXXXX";

        c->fd  = fd;
        c->tmp = mkstemp(tmpl);
        assert_true(c->tmp >= 0);
        unlink(tmpl);
        fflush(NULL);
        c->saved = dup(fd);
        assert_true(c->saved >= 0);
        assert_true(dup2(c->tmp, fd) >= 0);
}

void tutil_capture_end(struct tutil_capture *c, char *out, size_t outsize)
{
        ssize_t n;

        fflush(NULL);
        assert_true(dup2(c->saved, c->fd) >= 0);
        close(c->saved);
        n = pread(c->tmp, out, outsize - 1, 0);
        assert_true(n >= 0);
        out[n] = '\0';
        close(c->tmp);
}
