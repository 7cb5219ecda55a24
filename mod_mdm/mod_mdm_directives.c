/*
 * mod_mdm: the directives and the records they fill. Every value is checked
 * by libmdm while the configuration is read, so `apachectl -t` names the
 * directive at fault.
 */
#include "mod_mdm.h"

#include "apr_strings.h"
#include "http_log.h"

APLOG_USE_MODULE(mdm);

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- */
/* server config                                                    */

void *
mdm_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    mdm_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));

    (void) s;
    c->connect_timeout = -1;
    c->timeout = -1;
    c->metrics = -1;
    c->wait_replicas = -1;
    return c;
}

void *
mdm_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    mdm_srv_conf_t *base = basev, *add = addv;
    mdm_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));

    *c = add->redis ? *add : *base;
    c->redis_user = add->redis_user ? add->redis_user : base->redis_user;
    c->redis_password =
        add->redis_password ? add->redis_password : base->redis_password;
    c->sentinel_password = add->sentinel_password ? add->sentinel_password
                                                  : base->sentinel_password;
    c->wait_replicas =
        add->wait_replicas >= 0 ? add->wait_replicas : base->wait_replicas;
    c->wait_ms = add->wait_replicas >= 0 ? add->wait_ms : base->wait_ms;
    c->connect_timeout = add->connect_timeout >= 0    ? add->connect_timeout
                         : base->connect_timeout >= 0 ? base->connect_timeout
                                                      : 1000;
    c->timeout = add->timeout >= 0    ? add->timeout
                 : base->timeout >= 0 ? base->timeout
                                      : 2000;
    return c;
}

/* MDMMetrics On|Off: one set of counters per server, so main server only */
static const char *
mdm_set_metrics(cmd_parms *cmd, void *dummy, int on)
{
    mdm_srv_conf_t *c =
        ap_get_module_config(cmd->server->module_config, &mdm_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void) dummy;
    if (err) {
        return err;
    }
    c->metrics = on;
    return NULL;
}

/* MDMRedis, MDMRedisSentinel, MDMRedisCluster: one of them (main server) */
static const char *
mdm_redis_claim(cmd_parms *cmd, mdm_srv_conf_t *c)
{
    const char *name = cmd->directive->directive;

    if (c->redis_kind && strcasecmp(c->redis_kind, name) != 0) {
        return apr_psprintf(cmd->pool,
                            "%s: cannot be used with %s (one Redis "
                            "topology per server)",
                            name, c->redis_kind);
    }
    if (c->redis_kind) {
        return apr_psprintf(cmd->pool, "%s: given twice", name);
    }
    c->redis_kind = name;
    c->target = apr_pcalloc(cmd->pool, sizeof(*c->target));
    return NULL;
}

static const char *
mdm_set_redis(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    mdm_srv_conf_t *c =
        ap_get_module_config(cmd->server->module_config, &mdm_module);
    const char *name = cmd->directive->directive, *err;
    char buf[512];
    int rc, i;

    (void) dummy;
    if ((err = mdm_redis_claim(cmd, c)) != NULL) {
        return err;
    }
    c->redis = "";
    for (i = 0; i < argc; i++) {
        c->redis =
            apr_pstrcat(cmd->pool, c->redis, i ? " " : "", argv[i], NULL);
    }
    if (cmd->info == (void *) 1) {
        rc = argc < 2
                 ? (snprintf(buf, sizeof(buf),
                             "%s: expected MASTER ADDR [ADDR...]", name),
                    -1)
                 : mdm_redis_target_sentinel(c->target, name, argv[0],
                                             (const char *const *) argv + 1,
                                             argc - 1, buf, sizeof(buf));
    } else if (cmd->info == (void *) 2) {
        rc = mdm_redis_target_cluster(c->target, name,
                                      (const char *const *) argv, argc, buf,
                                      sizeof(buf));
    } else if (argc != 1) {
        snprintf(buf, sizeof(buf), "%s: expected one IP:PORT or unix:PATH",
                 name);
        rc = -1;
    } else {
        rc =
            mdm_redis_target_single(c->target, name, argv[0], buf, sizeof(buf));
    }
    return rc == 0 ? NULL : apr_pstrdup(cmd->pool, buf);
}

static const char *
mdm_set_redis_user(cmd_parms *cmd, void *dummy, const char *v)
{
    mdm_srv_conf_t *c =
        ap_get_module_config(cmd->server->module_config, &mdm_module);

    (void) dummy;
    if (v[0] == '\0' || strlen(v) >= sizeof(c->target->user) ||
        strcspn(v, " \t\r\n") != strlen(v)) {
        return apr_psprintf(cmd->pool, "%s: invalid user name",
                            cmd->directive->directive);
    }
    c->redis_user = v;
    return NULL;
}

/* MDMRedisPasswordFile, MDMRedisSentinelPasswordFile: read now */
static const char *
mdm_set_redis_password(cmd_parms *cmd, void *dummy, const char *v)
{
    mdm_srv_conf_t *c =
        ap_get_module_config(cmd->server->module_config, &mdm_module);
    const char *name = cmd->directive->directive;
    const char *path = ap_server_root_relative(cmd->temp_pool, v);
    char pw[sizeof(((mdm_redis_target_t *) 0)->password)], err[600];
    int loose = 0;

    (void) dummy;
    if (path == NULL ||
        mdm_redis_target_password(pw, sizeof(pw), name, path, &loose, err,
                                  sizeof(err)) != 0) {
        return path ? apr_pstrdup(cmd->pool, err)
                    : apr_psprintf(cmd->pool, "%s: bad path \"%s\"", name, v);
    }
    if (loose) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                     "%s %s: \"%s\" is readable by group or others",
                     MDM_ID_REDIS_PWFILE_MODE, name, path);
    }
    if (cmd->info) {
        c->sentinel_password = apr_pstrdup(cmd->pool, pw);
    } else {
        c->redis_password = apr_pstrdup(cmd->pool, pw);
    }
    memset(pw, 0, sizeof(pw));
    return NULL;
}

/* MDMRedisWait N MS */
static const char *
mdm_set_redis_wait(cmd_parms *cmd, void *dummy, const char *n, const char *ms)
{
    mdm_srv_conf_t *c =
        ap_get_module_config(cmd->server->module_config, &mdm_module);
    char *e1, *e2;
    long a = strtol(n, &e1, 10), b = strtol(ms, &e2, 10);

    (void) dummy;
    if (*e1 || *e2 || a < 0 || a > 100 || b < 1 || b > 60000) {
        return apr_psprintf(cmd->pool,
                            "%s: expected REPLICAS (0-100) and MILLISECONDS "
                            "(1-60000), got \"%s %s\"",
                            cmd->directive->directive, n, ms);
    }
    c->wait_replicas = (int) a;
    c->wait_ms = (int) b;
    return NULL;
}

static const char *
mdm_set_ms(cmd_parms *cmd, void *dummy, const char *v)
{
    mdm_srv_conf_t *c =
        ap_get_module_config(cmd->server->module_config, &mdm_module);
    char *end;
    long n = strtol(v, &end, 10);

    (void) dummy;
    if (*end || n < 1 || n > 3600000) {
        return apr_psprintf(cmd->pool,
                            "%s: expected milliseconds (1-3600000), got "
                            "\"%s\"",
                            cmd->directive->directive, v);
    }
    if (cmd->info) {
        c->timeout = (int) n;
    } else {
        c->connect_timeout = (int) n;
    }
    return NULL;
}

/* ---------------------------------------------------------------- */
/* directory config                                                 */

void *
mdm_create_dir_conf(apr_pool_t *p, char *dir)
{
    mdm_dir_conf_t *d = apr_pcalloc(p, sizeof(*d));

    d->location = dir;
    d->verify = -1;
    return d;
}

static int
mdm_opts_have(const apr_array_header_t *opts, const char *name)
{
    int i;

    for (i = 0; opts && i < opts->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(opts, i, mdm_opt_t).name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * Each scep.* / profile.* option a section does not set comes from the
 * enclosing one: a CA set once for the virtual host serves its SCEP,
 * profile and admin locations.
 */
static apr_array_header_t *
mdm_merge_opts(apr_pool_t *p, apr_array_header_t *base, apr_array_header_t *add)
{
    apr_array_header_t *m;
    int i;

    if (base == NULL || add == NULL) {
        return add ? add : base;
    }
    m = apr_array_make(p, base->nelts + add->nelts, sizeof(mdm_opt_t));
    for (i = 0; i < base->nelts; i++) {
        mdm_opt_t *o = &APR_ARRAY_IDX(base, i, mdm_opt_t);

        if (!mdm_opts_have(add, o->name)) {
            *(mdm_opt_t *) apr_array_push(m) = *o;
        }
    }
    apr_array_cat(m, add);
    return m;
}

void *
mdm_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    mdm_dir_conf_t *base = basev, *add = addv;
    mdm_dir_conf_t *d = apr_pcalloc(p, sizeof(*d));

#define MERGE(f) d->f = add->f ? add->f : base->f
    d->location = add->location;
    MERGE(prefix);
    MERGE(identity);
    MERGE(identity_ca);
    MERGE(identity_header);
    MERGE(topics);
    MERGE(binding);
    MERGE(results_ttl);
    MERGE(events_maxlen);
    MERGE(user_auth);
    MERGE(admin_key);
#undef MERGE
    d->opts = mdm_merge_opts(p, base->opts, add->opts);
    d->verify = add->verify >= 0 ? add->verify : base->verify;
    return d;
}

/* Check a value the way libmdm will use it; NULL or the error. */
static const char *
mdm_check(cmd_parms *cmd, const char *option, const char *value)
{
    mdm_conf_t *tmp = mdm_conf_new();
    char err[256];
    int rc;

    if (tmp == NULL) {
        return "out of memory";
    }
    rc = mdm_conf_set(tmp, option, value, err, sizeof(err));
    mdm_conf_free(tmp);
    if (rc != 0) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->directive->directive,
                            err);
    }
    return NULL;
}

#define MDM_STR_SETTER(fn, field, option)                                      \
    static const char *fn(cmd_parms *cmd, void *dv, const char *v)             \
    {                                                                          \
        mdm_dir_conf_t *d = dv;                                                \
        const char *e = mdm_check(cmd, option, v);                             \
                                                                               \
        if (e == NULL) {                                                       \
            d->field = v;                                                      \
        }                                                                      \
        return e;                                                              \
    }

MDM_STR_SETTER(mdm_set_prefix, prefix, "prefix")
MDM_STR_SETTER(mdm_set_binding, binding, "binding")
MDM_STR_SETTER(mdm_set_ttl, results_ttl, "results_ttl")
MDM_STR_SETTER(mdm_set_maxlen, events_maxlen, "events_maxlen")
MDM_STR_SETTER(mdm_set_user_auth, user_auth, "user_auth")
MDM_STR_SETTER(mdm_set_admin_key, admin_key, "admin_key")

static const char *
mdm_set_identity(cmd_parms *cmd, void *dv, const char *v)
{
    mdm_dir_conf_t *d = dv;
    const char *all =
        d->identity ? apr_pstrcat(cmd->pool, d->identity, ",", v, NULL) : v;
    const char *e = mdm_check(cmd, "identity", all);

    if (e == NULL) {
        d->identity = all;
    }
    return e;
}

static const char *
mdm_set_identity_ca(cmd_parms *cmd, void *dv, const char *v)
{
    mdm_dir_conf_t *d = dv;
    mdm_conf_t *tmp = mdm_conf_new();
    char err[512];
    const char *path = ap_server_root_relative(cmd->pool, v);
    int rc;

    if (tmp == NULL || path == NULL) {
        mdm_conf_free(tmp);
        return "MDMIdentityCA: bad path";
    }
    /* load it now: a missing or empty CA file fails apachectl -t */
    rc = mdm_conf_set(tmp, "ca_file", path, err, sizeof(err)) != 0 ||
         mdm_conf_finish(tmp, err, sizeof(err)) != 0;
    mdm_conf_free(tmp);
    if (rc) {
        return apr_psprintf(cmd->pool, "MDMIdentityCA: %s", err);
    }
    d->identity_ca = path;
    return NULL;
}

static const char *
mdm_set_identity_header(cmd_parms *cmd, void *dv, const char *v)
{
    mdm_dir_conf_t *d = dv;

    (void) cmd;
    d->identity_header = v;
    return NULL;
}

static const char *
mdm_set_topic(cmd_parms *cmd, void *dv, const char *v)
{
    mdm_dir_conf_t *d = dv;
    const char *e = mdm_check(cmd, "topic", v);

    if (e) {
        return e;
    }
    if (d->topics == NULL) {
        d->topics = apr_array_make(cmd->pool, 2, sizeof(const char *));
    }
    *(const char **) apr_array_push(d->topics) = v;
    return NULL;
}

/*
 * MDMSCEP* and MDMProfile* directives: cmd->info is the libmdm option
 * ("*" first: repeatable). Kept as written and handed to libmdm in order,
 * since some depend on others (a key and its passphrase file); the whole
 * set is checked in check_config, so apachectl -t still names the
 * directive.
 */
static const char *
mdm_set_opt(cmd_parms *cmd, void *dv, const char *v)
{
    mdm_dir_conf_t *d = dv;
    const char *name = cmd->info;
    int multi = name[0] == '*';
    size_t n;
    mdm_opt_t *o;

    name += multi;
    if (!multi && mdm_opts_have(d->opts, name)) {
        return apr_psprintf(cmd->pool, "%s: given twice in this section",
                            cmd->directive->directive);
    }
    if (*v == '\0') {
        return apr_psprintf(cmd->pool, "%s: needs a value",
                            cmd->directive->directive);
    }
    n = strlen(name);
    /* files are relative to ServerRoot, as everywhere in httpd */
    if ((n > 5 && strcmp(name + n - 5, "_cert") == 0) ||
        (n > 4 && strcmp(name + n - 4, "_key") == 0) ||
        (n > 5 && strcmp(name + n - 5, "_file") == 0) ||
        (n > 3 && strcmp(name + n - 3, "_ca") == 0) ||
        (n > 6 && strcmp(name + n - 6, "_chain") == 0) ||
        strcmp(name, "scep.chain") == 0) {
        v = ap_server_root_relative(cmd->pool, v);
        if (v == NULL) {
            return apr_psprintf(cmd->pool, "%s: bad path",
                                cmd->directive->directive);
        }
    }
    if (d->opts == NULL) {
        d->opts = apr_array_make(cmd->pool, 8, sizeof(mdm_opt_t));
    }
    o = apr_array_push(d->opts);
    o->name = name;
    o->value = v;
    return NULL;
}

static const char *
mdm_set_verify(cmd_parms *cmd, void *dv, int on)
{
    mdm_dir_conf_t *d = dv;

    (void) cmd;
    d->verify = on;
    return NULL;
}

const command_rec mdm_cmds[] = {
    AP_INIT_FLAG("MDMMetrics", mdm_set_metrics, NULL, RSRC_CONF,
                 "On (default): count requests for SetHandler mdm-metrics"),
    AP_INIT_TAKE_ARGV("MDMRedis", mdm_set_redis, NULL, RSRC_CONF,
                      "Redis for MDM: IP:PORT or unix:PATH"),
    AP_INIT_TAKE_ARGV("MDMRedisSentinel", mdm_set_redis, (void *) 1, RSRC_CONF,
                      "MASTER ADDR [ADDR...]: the master that "
                      "these sentinels name"),
    AP_INIT_TAKE_ARGV("MDMRedisCluster", mdm_set_redis, (void *) 2, RSRC_CONF,
                      "ADDR [ADDR...]: Redis Cluster seed nodes"),
    AP_INIT_TAKE1("MDMRedisUser", mdm_set_redis_user, NULL, RSRC_CONF,
                  "Redis ACL user (AUTH user password)"),
    AP_INIT_TAKE1("MDMRedisPasswordFile", mdm_set_redis_password, NULL,
                  RSRC_CONF, "file whose first line is the Redis password"),
    AP_INIT_TAKE1("MDMRedisSentinelPasswordFile", mdm_set_redis_password,
                  (void *) 1, RSRC_CONF,
                  "file whose first line is the sentinels' password"),
    AP_INIT_TAKE2("MDMRedisWait", mdm_set_redis_wait, NULL, RSRC_CONF,
                  "REPLICAS MS: WAIT for replicas after writes"),
    AP_INIT_TAKE1("MDMRedisConnectTimeout", mdm_set_ms, NULL, RSRC_CONF,
                  "Redis connect timeout, milliseconds (1000)"),
    AP_INIT_TAKE1("MDMRedisTimeout", mdm_set_ms, (void *) 1, RSRC_CONF,
                  "Redis command timeout, milliseconds (2000)"),
    AP_INIT_TAKE1("MDMPrefix", mdm_set_prefix, NULL, RSRC_CONF | ACCESS_CONF,
                  "Redis key prefix (mdm:)"),
    AP_INIT_ITERATE("MDMIdentity", mdm_set_identity, NULL,
                    RSRC_CONF | ACCESS_CONF,
                    "accepted identity sources: signature tls header"),
    AP_INIT_TAKE1("MDMIdentityCA", mdm_set_identity_ca, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "PEM file of the device identity CA"),
    AP_INIT_TAKE1("MDMIdentityHeader", mdm_set_identity_header, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "header with the client certificate from a trusted proxy"),
    AP_INIT_ITERATE("MDMTopic", mdm_set_topic, NULL, RSRC_CONF | ACCESS_CONF,
                    "accepted push topics"),
    AP_INIT_TAKE1("MDMBinding", mdm_set_binding, NULL, RSRC_CONF | ACCESS_CONF,
                  "strict | retro | off"),
    AP_INIT_TAKE1("MDMResultsTTL", mdm_set_ttl, NULL, RSRC_CONF | ACCESS_CONF,
                  "seconds command results are kept"),
    AP_INIT_TAKE1("MDMEventsMaxlen", mdm_set_maxlen, NULL,
                  RSRC_CONF | ACCESS_CONF, "cap of the events stream"),
    AP_INIT_TAKE1("MDMUserAuthenticate", mdm_set_user_auth, NULL,
                  RSRC_CONF | ACCESS_CONF, "gone | zero-length"),
    AP_INIT_TAKE1("MDMAdminKey", mdm_set_admin_key, NULL,
                  RSRC_CONF | ACCESS_CONF, "X-API-Key the admin API requires"),
    AP_INIT_FLAG("MDMVerify", mdm_set_verify, NULL, ACCESS_CONF,
                 "verify the device identity before proxying"),
    AP_INIT_TAKE1("MDMACMEURL", mdm_set_opt, "acme.url",
                  RSRC_CONF | ACCESS_CONF, "libmdm option acme.url"),
    AP_INIT_TAKE1("MDMACMEAttestCA", mdm_set_opt, "acme.attest_ca",
                  RSRC_CONF | ACCESS_CONF, "libmdm option acme.attest_ca"),
    AP_INIT_TAKE1("MDMACMEOrderTTL", mdm_set_opt, "acme.order_ttl",
                  RSRC_CONF | ACCESS_CONF, "libmdm option acme.order_ttl"),
    AP_INIT_TAKE1("MDMACMECertTTL", mdm_set_opt, "acme.cert_ttl",
                  RSRC_CONF | ACCESS_CONF, "libmdm option acme.cert_ttl"),
    AP_INIT_TAKE1("MDMSCEPCACert", mdm_set_opt, "scep.ca_cert",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.ca_cert"),
    AP_INIT_TAKE1("MDMSCEPCAKey", mdm_set_opt, "scep.ca_key",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.ca_key"),
    AP_INIT_TAKE1("MDMSCEPCAKeyPassFile", mdm_set_opt, "scep.ca_key_pass_file",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option scep.ca_key_pass_file"),
    AP_INIT_TAKE1("MDMSCEPChain", mdm_set_opt, "*scep.chain",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.chain"),
    AP_INIT_TAKE1("MDMSCEPRACert", mdm_set_opt, "scep.ra_cert",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.ra_cert"),
    AP_INIT_TAKE1("MDMSCEPRAKey", mdm_set_opt, "scep.ra_key",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.ra_key"),
    AP_INIT_TAKE1("MDMSCEPRAKeyPassFile", mdm_set_opt, "scep.ra_key_pass_file",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option scep.ra_key_pass_file"),
    AP_INIT_TAKE1("MDMSCEPValidityDays", mdm_set_opt, "scep.validity_days",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.validity_days"),
    AP_INIT_TAKE1("MDMSCEPApproval", mdm_set_opt, "scep.approval",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.approval"),
    AP_INIT_TAKE1("MDMSCEPPendingTTL", mdm_set_opt, "scep.pending_ttl",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.pending_ttl"),
    AP_INIT_TAKE1("MDMSCEPNextCACert", mdm_set_opt, "scep.next_ca_cert",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.next_ca_cert"),
    AP_INIT_TAKE1("MDMStoreCert", mdm_set_opt, "store_der",
                  RSRC_CONF | ACCESS_CONF, "libmdm option store_der"),
    AP_INIT_TAKE1("MDMSCEPMinKeyBits", mdm_set_opt, "scep.min_key_bits",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.min_key_bits"),
    AP_INIT_TAKE1("MDMSCEPChallenge", mdm_set_opt, "scep.challenge",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.challenge"),
    AP_INIT_TAKE1("MDMSCEPChallengeFile", mdm_set_opt, "scep.challenge_file",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.challenge_file"),
    AP_INIT_TAKE1("MDMSCEPChallengeTTL", mdm_set_opt, "scep.challenge_ttl",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.challenge_ttl"),
    AP_INIT_TAKE1("MDMSCEPRenewal", mdm_set_opt, "scep.renewal",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.renewal"),
    AP_INIT_TAKE1("MDMSCEPLegacyDES", mdm_set_opt, "scep.legacy_des",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.legacy_des"),
    AP_INIT_TAKE1("MDMSCEPCRLURL", mdm_set_opt, "scep.crl_url",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.crl_url"),
    AP_INIT_TAKE1("MDMSCEPCRLDays", mdm_set_opt, "scep.crl_days",
                  RSRC_CONF | ACCESS_CONF, "libmdm option scep.crl_days"),
    AP_INIT_TAKE1("MDMRenewDays", mdm_set_opt, "renew_days",
                  RSRC_CONF | ACCESS_CONF, "libmdm option renew_days"),
    AP_INIT_TAKE1("MDMProfileServerURL", mdm_set_opt, "profile.server_url",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.server_url"),
    AP_INIT_TAKE1("MDMProfileCheckInURL", mdm_set_opt, "profile.checkin_url",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.checkin_url"),
    AP_INIT_TAKE1("MDMProfileTopic", mdm_set_opt, "profile.topic",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.topic"),
    AP_INIT_TAKE1("MDMProfilePushCert", mdm_set_opt, "profile.push_cert",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.push_cert"),
    AP_INIT_TAKE1("MDMProfileSCEPURL", mdm_set_opt, "profile.scep_url",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.scep_url"),
    AP_INIT_TAKE1("MDMProfileACMEURL", mdm_set_opt, "profile.acme_url",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.acme_url"),
    AP_INIT_TAKE1("MDMProfileACMEClientIdentifier", mdm_set_opt,
                  "profile.acme_client_identifier", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.acme_client_identifier"),
    AP_INIT_TAKE1("MDMProfileACMEKeyType", mdm_set_opt, "profile.acme_key_type",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.acme_key_type"),
    AP_INIT_TAKE1("MDMProfileACMEKeySize", mdm_set_opt, "profile.acme_key_size",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.acme_key_size"),
    AP_INIT_TAKE1("MDMProfileACMEHardwareBound", mdm_set_opt,
                  "profile.acme_hardware_bound", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.acme_hardware_bound"),
    AP_INIT_TAKE1("MDMProfileACMEAttest", mdm_set_opt, "profile.acme_attest",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.acme_attest"),
    AP_INIT_TAKE1("MDMProfileSCEPName", mdm_set_opt, "profile.scep_name",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.scep_name"),
    AP_INIT_TAKE1("MDMProfileSCEPSubject", mdm_set_opt, "profile.scep_subject",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.scep_subject"),
    AP_INIT_TAKE1("MDMProfileSCEPCA", mdm_set_opt, "profile.scep_ca",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.scep_ca"),
    AP_INIT_TAKE1("MDMProfileSCEPFingerprint", mdm_set_opt,
                  "profile.scep_fingerprint", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.scep_fingerprint"),
    AP_INIT_TAKE1("MDMProfileSCEPChallenge", mdm_set_opt,
                  "profile.scep_challenge", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.scep_challenge"),
    AP_INIT_TAKE1("MDMProfileSCEPKeySize", mdm_set_opt, "profile.scep_key_size",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.scep_key_size"),
    AP_INIT_TAKE1("MDMProfileSCEPKeyUsage", mdm_set_opt,
                  "profile.scep_key_usage", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.scep_key_usage"),
    AP_INIT_TAKE1("MDMProfileSCEPRetries", mdm_set_opt, "profile.scep_retries",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.scep_retries"),
    AP_INIT_TAKE1("MDMProfileSCEPRetryDelay", mdm_set_opt,
                  "profile.scep_retry_delay", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.scep_retry_delay"),
    AP_INIT_TAKE1("MDMProfileTrustCert", mdm_set_opt, "*profile.trust_cert",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.trust_cert"),
    AP_INIT_TAKE1("MDMProfileOrganization", mdm_set_opt, "profile.organization",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.organization"),
    AP_INIT_TAKE1("MDMProfileDisplayName", mdm_set_opt, "profile.display_name",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.display_name"),
    AP_INIT_TAKE1("MDMProfileDescription", mdm_set_opt, "profile.description",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.description"),
    AP_INIT_TAKE1("MDMProfileIdentifier", mdm_set_opt, "profile.identifier",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.identifier"),
    AP_INIT_TAKE1("MDMProfileAccessRights", mdm_set_opt,
                  "profile.access_rights", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.access_rights"),
    AP_INIT_TAKE1("MDMProfileSignMessage", mdm_set_opt, "profile.sign_message",
                  RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.sign_message"),
    AP_INIT_TAKE1("MDMProfileCheckOutWhenRemoved", mdm_set_opt,
                  "profile.check_out_when_removed", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.check_out_when_removed"),
    AP_INIT_TAKE1("MDMProfileUseDevelopmentAPNS", mdm_set_opt,
                  "profile.use_development_apns", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.use_development_apns"),
    AP_INIT_TAKE1("MDMProfileServerCapabilities", mdm_set_opt,
                  "profile.server_capabilities", RSRC_CONF | ACCESS_CONF,
                  "libmdm option profile.server_capabilities"),
    AP_INIT_TAKE1("MDMProfileSignCert", mdm_set_opt, "profile.sign_cert",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.sign_cert"),
    AP_INIT_TAKE1("MDMProfileSignKey", mdm_set_opt, "profile.sign_key",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.sign_key"),
    AP_INIT_TAKE1("MDMProfileSignChain", mdm_set_opt, "profile.sign_chain",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.sign_chain"),
    AP_INIT_TAKE1("MDMProfileUnsigned", mdm_set_opt, "profile.unsigned",
                  RSRC_CONF | ACCESS_CONF, "libmdm option profile.unsigned"),

    {NULL}};

/* ---------------------------------------------------------------- */

const char *
mdm_opt_error(apr_pool_t *p, const char *err)
{
    const command_rec *c;
    const char *colon = strchr(err, ':');
    size_t n = colon ? (size_t) (colon - err) : 0;

    for (c = mdm_cmds; n && c->name; c++) {
        const char *o = c->cmd_data;

        if (c->func.take1 != mdm_set_opt) {
            continue;
        }
        o += o[0] == '*';
        if (strlen(o) == n && strncmp(o, err, n) == 0) {
            return apr_pstrcat(p, c->name, colon, NULL);
        }
    }
    return err;
}
