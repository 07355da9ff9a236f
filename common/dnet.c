/* dnet.c - listen address parsing (see dnet.h). */
#include "dnet.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits s into host (copied into host, may be empty) and port. */
static int dnet_split(const char *s, char *host, size_t hostsize, long *port, char *why,
                      size_t whysize)
{
        const char *colon, *h = s;
        size_t hl;
        char *end;

        if (*s == '[') {
                const char *rb = strchr(s, ']');
                if (!rb || rb[1] != ':') {
                        snprintf(why, whysize, "expected [address]:port");
                        return -1;
                }
                h     = s + 1;
                hl    = (size_t)(rb - h);
                colon = rb + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon) {
                        snprintf(why, whysize, "expected host:port");
                        return -1;
                }
                hl = (size_t)(colon - s);
                if (memchr(s, ':', hl)) {
                        snprintf(why, whysize,
                                 "an IPv6 address needs brackets: [addr]:port");
                        return -1;
                }
        }
        if (hl >= hostsize) {
                snprintf(why, whysize, "host name too long");
                return -1;
        }
        memcpy(host, h, hl);
        host[hl] = '\0';
        *port    = strtol(colon + 1, &end, 10);
        if (colon[1] < '0' || colon[1] > '9' || *end || *port < 0 || *port > 65535) {
                snprintf(why, whysize, "port must be a number from 0 to 65535");
                return -1;
        }
        return 0;
}

int dnet_check_listen(const char *s, char *why, size_t whysize)
{
        char host[256];
        long port;

        return dnet_split(s, host, sizeof(host), &port, why, whysize);
}

int dnet_listen_port(const char *s)
{
        char host[256], why[64];
        long port;

        if (dnet_split(s, host, sizeof(host), &port, why, sizeof(why)))
                return -1;
        return (int)port;
}

int dnet_resolve_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                        char *why, size_t whysize)
{
        struct addrinfo hints, *res = NULL;
        char host[256], portstr[8];
        long port;
        int rc;

        if (dnet_split(s, host, sizeof(host), &port, why, whysize))
                return -1;
        snprintf(portstr, sizeof(portstr), "%ld", port);
        memset(&hints, 0, sizeof(hints));
        hints.ai_family   = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
        rc                = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
        if (rc || !res) {
                snprintf(why, whysize, "cannot resolve %s: %s", host, gai_strerror(rc));
                return -1;
        }
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
}
