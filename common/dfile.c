/* dfile.c - see dfile.h. */
#include "dfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *dfile_read(const char *path, size_t max, size_t *len, struct stat *st, char *err,
                 size_t errsize)
{
        struct stat own;
        size_t size, n = 0;
        char *buf;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (!st)
                st = &own;
        if (fd < 0) {
                snprintf(err, errsize, "cannot open %s: %s", path, strerror(errno));
                return NULL;
        }
        if (fstat(fd, st)) {
                snprintf(err, errsize, "cannot read %s: %s", path, strerror(errno));
                close(fd);
                return NULL;
        }
        if (!S_ISREG(st->st_mode)) {
                snprintf(err, errsize, "cannot read %s: not a regular file", path);
                close(fd);
                return NULL;
        }
        if ((unsigned long long)st->st_size > max) {
                snprintf(err, errsize, "%s: larger than %zu bytes", path, max);
                close(fd);
                return NULL;
        }
        size = (size_t)st->st_size;
        buf  = malloc(size + 1);
        if (!buf) {
                snprintf(err, errsize, "%s: out of memory", path);
                close(fd);
                return NULL;
        }
        /* Up to size bytes: a file that grew meanwhile is read as it was. */
        while (n < size) {
                ssize_t r = read(fd, buf + n, size - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        snprintf(err, errsize, "cannot read %s: %s", path,
                                 strerror(errno));
                        memset(buf, 0, n);
                        free(buf);
                        close(fd);
                        return NULL;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        close(fd);
        buf[n] = '\0';
        *len   = n;
        return buf;
}

int dfile_words(char *line, char **w, int max)
{
        int n = 0;

        for (char *p = line; *p;) {
                while (*p == ' ' || *p == '\t' || *p == '\r')
                        *p++ = '\0';
                if (!*p)
                        break;
                if (n == max)
                        return max + 1;
                w[n++] = p;
                while (*p && *p != ' ' && *p != '\t' && *p != '\r')
                        p++;
        }
        return n;
}
