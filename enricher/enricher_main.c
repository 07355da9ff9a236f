/* enricher_main.c - duro-enricher: not built yet (its own issue). It says so and
 * exits non-zero, so that nobody mistakes it for a working enricher. */
#include <stdio.h>

int main(void)
{
        fprintf(stderr, "duro-enricher: not yet implemented in this release; "
                        "only duro-bridge is available\n");
        return 2;
}
