/* bridge_ready.c - what /readyz (and the duro_bridge_ready gauge) answer: not ready
 * while draining (set by the shutdown in bridge_main.c), else the producer's health
 * (bridge_kafka_ready: fatal error, broker reachable, raw topic known). */
#include "bridge.h"

#include <stdio.h>

int bridge_ready(void *opaque, char *reason, size_t reasonsize)
{
        struct bridge *br = opaque;

        if (atomic_load(&br->draining)) {
                snprintf(reason, reasonsize, "shutting down");
                return 0;
        }
        return bridge_kafka_ready(br, reason, reasonsize);
}
