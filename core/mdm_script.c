/* The Redis scripts with their SHA-1s, for EVALSHA (computed once). */
#include "mdm_internal.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

extern const char *const mdm_lua_src[MDM_LUA_COUNT];
extern const char *const mdm_lua_name[MDM_LUA_COUNT];

static mdm_script_t scripts[MDM_LUA_COUNT];
static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void
scripts_init(void)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    size_t i;

    for (i = 0; i < MDM_LUA_COUNT; i++) {
        scripts[i].name = mdm_lua_name[i];
        scripts[i].src = mdm_lua_src[i];
        if (EVP_Digest(mdm_lua_src[i], strlen(mdm_lua_src[i]), md, &mdlen,
                       EVP_sha1(), NULL) == 1) {
            mdm_hex(md, mdlen, scripts[i].sha1);
        }
    }
}

const mdm_script_t *
mdm_script(mdm_lua_t which)
{
    pthread_once(&scripts_once, scripts_init);
    return &scripts[which];
}
