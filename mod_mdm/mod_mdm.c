/*
 * mod_mdm: the module declaration and its hooks. The directives are in
 * mod_mdm_directives.c, the libmdm configurations built from them in
 * mod_mdm_conf.c, the handlers in mod_mdm_handler.c.
 */
#include "mod_mdm.h"

#include "http_protocol.h"
#include "http_request.h"

static void
mdm_child_init(apr_pool_t *p, server_rec *s)
{
    mdm_confs_init(p);
    mdm_redis_child_init(p, s);
    mdm_metrics_child_init(p);
}

static void
mdm_register_hooks(apr_pool_t *p)
{
    (void) p;
    ap_hook_handler(mdm_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(mdm_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(mdm_metrics_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(mdm_metrics_log, NULL, NULL, APR_HOOK_MIDDLE);
    /* before mod_headers' fixup, which reads the MDM_* variables */
    ap_hook_fixups(mdm_verify_fixup, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_child_init(mdm_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(mdm_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    mdm_register_filters();
}

AP_DECLARE_MODULE(mdm) = {STANDARD20_MODULE_STUFF, mdm_create_dir_conf,
                          mdm_merge_dir_conf,      mdm_create_srv_conf,
                          mdm_merge_srv_conf,      mdm_cmds,
                          mdm_register_hooks,      0};
