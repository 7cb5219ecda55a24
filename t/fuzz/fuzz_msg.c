/*
 * libFuzzer target for mdm_msg_parse: every input is tried against each
 * endpoint kind, since dispatch and required keys depend on it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mdm_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const mdm_expect_t modes[] = {MDM_EXPECT_CHECKIN, MDM_EXPECT_REPORT,
                                         MDM_EXPECT_ANY};
    mdm_msg_t m;
    const char *why;
    size_t i;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        why = NULL;
        if (mdm_msg_parse(data, size, modes[i], &m, &why) == MDM_MSG_OK) {
            /* touch what the callers will read */
            if (m.id == NULL || m.device_id == NULL ||
                strlen(m.id) < strlen(m.device_id) ||
                !mdm_id_valid(m.id, strlen(m.id))) {
                __builtin_trap();
            }
            if (m.token.ptr != NULL && m.token.len > 0) {
                volatile unsigned char c = m.token.ptr[m.token.len - 1];
                (void) c;
            }
        } else if (why == NULL || m.root != NULL || m.id != NULL) {
            __builtin_trap();
        }
        mdm_msg_clear(&m);
    }
    return 0;
}
