/*
 * libFuzzer target for the device's DDM input (mdm_ddm_json.c): a status
 * report is parsed and flattened, the items are nested back, and the
 * whole input is also tried as an admin declaration.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mdm_ddm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdm_ddm_status_t st;
    const char *why = NULL;
    size_t *nl, *vl, i;
    json_t *j;

    if (mdm_ddm_status_parse(data, size, &st, &why) == 0) {
        nl = calloc(st.n + 1, sizeof(size_t));
        vl = calloc(st.n + 1, sizeof(size_t));
        for (i = 0; nl && vl && i < st.n; i++) {
            nl[i] = strlen(st.names[i]);
            vl[i] = strlen(st.values[i]);
        }
        if (nl && vl) {
            j = mdm_ddm_status_nest((const char *const *) st.names, nl,
                                    (const char *const *) st.values, vl, st.n);
            if (j == NULL || st.errors == NULL) {
                __builtin_trap();
            }
            json_decref(j);
        }
        free(nl);
        free(vl);
        mdm_ddm_status_clear(&st);
    } else if (why == NULL) {
        __builtin_trap();
    }
    j = mdm_ddm_decl_parse(data, size, &why);
    json_decref(j);
    return 0;
}
