/* dnet.h - listen addresses: "host:port", "[v6]:port", ":port" (all interfaces). */
#ifndef DNET_H
#define DNET_H

#include <stddef.h>
#include <sys/socket.h>

/* Checks the syntax (host part, port 0..65535). Returns 0 or -1 with why set. */
int dnet_check_listen(const char *s, char *why, size_t whysize);

/* Resolves s into ss/len for bind(). Returns 0 or -1 with why set. */
int dnet_resolve_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                        char *why, size_t whysize);

/* Port number of a listen address string (-1 when invalid). */
int dnet_listen_port(const char *s);

#endif
