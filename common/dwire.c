/* dwire.c - the names of dwire.h's enums. */
#include "dwire.h"

#include <string.h>

static const char *const dwire_kinds[DWIRE_NKINDS]             = {"unknown", "item",
                                                                  "change_order"};
static const char *const dwire_dlq_classes[DWIRE_NDLQ_CLASSES] = {
    "invalid-payload", "no-topic", "produce-rejected", "resource-error"};

const char *dwire_kind_name(enum dwire_kind k)
{
        return (unsigned)k < DWIRE_NKINDS ? dwire_kinds[k] : dwire_kinds[0];
}

const char *dwire_dlq_class_name(enum dwire_dlq_class c)
{
        return (unsigned)c < DWIRE_NDLQ_CLASSES ? dwire_dlq_classes[c] : "unknown";
}

int dwire_dlq_class_parse(const char *name)
{
        for (int i = 0; i < DWIRE_NDLQ_CLASSES; i++)
                if (!strcmp(dwire_dlq_classes[i], name))
                        return i;
        return -1;
}
