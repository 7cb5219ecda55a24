/*
 * mdmctl: the admin's command line. For now it talks to Redis directly
 * through libmdm's blocking executor; the same operations are what the
 * modules' admin API exposes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis.h>
#include <jansson.h>

#include "mdm.h"
#include "mdm_redislink.h"
#include "mdm_sync.h"
#include "mdmctl_cert.h"
#include "mdmctl_dep.h"
#include "mdmctl_push.h"

static const char usage[] =
    "usage: mdmctl [--redis ADDR | --redis-sentinel MASTER,ADDR[,ADDR...] |\n"
    "               --redis-cluster ADDR[,ADDR...]] [--redis-user NAME]\n"
    "              [--redis-password-file PATH] [--prefix P] COMMAND ARGS\n"
    "\n"
    "  enqueue ID[,ID...] FILE [--nopush]\n"
    "                     queue a command (plist or JSON; '-' = stdin) for\n"
    "                     one or more enrollments and request a push\n"
    "  push ID[,ID...]    request a push\n"
    "  push status        mdm-pushd: each daemon's counters and each push\n"
    "                     certificate's topic, expiry and state\n"
    "  show ID            show an enrollment record\n"
    "  queue ID           list an enrollment's queued commands\n"
    "  delete ID UUID     remove one queued command\n"
    "  clear ID           remove every queued command\n"
    "  result ID UUID     show a command result\n"
    "  revoke ID [SHA256] refuse the device's identity certificate (the\n"
    "                     bound one, or the one with this SHA-256) from now "
    "on\n"
    "  renewals [--days N]\n"
    "                     enrollments whose identity certificate expires\n"
    "                     within N days (default: renew_days, else 30);\n"
    "                     the renewal sweep is the admin API's POST\n"
    "                     /renewals/run (it needs the profile options)\n"
    "  scep challenge [TTL]\n"
    "                     create a one-time SCEP challenge (TTL seconds;\n"
    "                     default: the CA's challenge lifetime)\n"
    "  scep revoke SERIAL revoke a certificate the SCEP CA issued (hex\n"
    "                     serial); its device is refused from its next\n"
    "                     request on\n"
    "  scep pending       list the SCEP requests awaiting approval (a CA\n"
    "                     with approval manual)\n"
    "  scep approve TXID  sign and record the certificate of a pending\n"
    "                     request (the client's next CertPoll gets it)\n"
    "  scep reject TXID   refuse a pending request\n"
    "  profile encrypt ID FILE [--nopush]\n"
    "                     queue the profile or payload in FILE (plist or\n"
    "                     JSON), encrypted to the enrollment's identity\n"
    "                     certificate, as InstallProfile (unsigned)\n"
    "                     (all need the CA: --ca DIR, or --ca-cert FILE\n"
    "                     --ca-key FILE [--ca-key-pass-file "
    "FILE])\n" MDMCTL_CERT_USAGE
    "  ddm put FILE       store a declaration (JSON; '-' = stdin)\n"
    "  ddm get [ID]       list the declarations, or show one\n"
    "  ddm delete ID      delete a declaration (from its sets and\n"
    "                     enrollments too)\n"
    "  ddm set NAME [ID...]\n"
    "                     create a set or replace its declarations\n"
    "  ddm set-add NAME ID, ddm set-remove NAME ID\n"
    "                     add or remove one declaration of a set\n"
    "  ddm sets [NAME]    list the sets, or show one\n"
    "  ddm set-delete NAME\n"
    "  ddm assign ID[,ID...] [set:NAME | declaration:ID]...\n"
    "  ddm unassign ID[,ID...] [set:NAME | declaration:ID]...\n"
    "                     (un)assign sets and declarations to enrollments;\n"
    "                     the affected ones get a DeclarativeManagement\n"
    "                     command and a push\n"
    "  ddm show ID        an enrollment's sets, declarations, token\n"
    "  ddm status ID      its last declarative status report\n"
    "  ddm sync ID[,ID...]\n"
    "                     recompute enrollments' "
    "declarations\n" MDMCTL_PUSH_USAGE MDMCTL_DEP_USAGE "\n"
    "  --redis ADDR       IP:PORT, unix:PATH or a socket path\n"
    "                     (default 127.0.0.1:6379, or $MDM_REDIS)\n"
    "  --redis-sentinel MASTER,ADDR[,ADDR...]\n"
    "                     the master these sentinels name\n"
    "  --redis-cluster ADDR[,ADDR...]\n"
    "                     Redis Cluster seed nodes\n"
    "  --redis-user NAME  ACL user (or $MDM_REDIS_USER)\n"
    "  --redis-password-file PATH\n"
    "                     the password is its first line (or\n"
    "                     $MDM_REDIS_PASSWORD_FILE)\n"
    "  --redis-sentinel-password-file PATH\n"
    "                     the sentinels' password (default: none)\n"
    "  --prefix P         key prefix (default mdm:)\n"
    "\n"
    "Prints the JSON answer; exits 0 on success, 1 when the operation was\n"
    "refused (unknown enrollment, duplicate uuid...), 2 on usage or\n"
    "connection errors. ca, profile, push csr|vendor-sign|check and dep\n"
    "work offline (no Redis; dep token-decrypt --redis excepted, which\n"
    "uses the global Redis options).\n";

/* --redis, --redis-sentinel, --redis-cluster and the credentials */
typedef struct {
    const char *addr, *sentinel, *cluster, *user, *password_file;
    const char *sentinel_password_file;
} redis_opts_t;

static void
log_link(void *data, int level, const char *msg)
{
    (void) data;
    (void) level;
    fprintf(stderr, "mdmctl: %s\n", msg);
}

static mdm_redislink_t *
connect_redis(const redis_opts_t *o)
{
    static mdm_redis_target_t t;
    const char *words[MDM_REDIS_MAX_ADDRS + 1], *kind;
    char buf[2048], err[700], addr[600];
    mdm_redislink_t *l;
    int n, rc, loose = 0;

    memset(&t, 0, sizeof(t));
    if ((o->sentinel != NULL) + (o->cluster != NULL) + (o->addr != NULL) > 1) {
        fprintf(stderr, "mdmctl: --redis, --redis-sentinel and "
                        "--redis-cluster exclude each other\n");
        return NULL;
    }
    if (o->sentinel) {
        kind = "--redis-sentinel";
        snprintf(buf, sizeof(buf), "%s", o->sentinel);
        n = mdm_redis_split(buf, ",", words, MDM_REDIS_MAX_ADDRS + 1);
        rc = n < 2 ? (snprintf(err, sizeof(err),
                               "%s: expected MASTER,ADDR[,ADDR...]", kind),
                      -1)
                   : mdm_redis_target_sentinel(&t, kind, words[0], words + 1,
                                               n - 1, err, sizeof(err));
    } else if (o->cluster) {
        kind = "--redis-cluster";
        snprintf(buf, sizeof(buf), "%s", o->cluster);
        n = mdm_redis_split(buf, ",", words, MDM_REDIS_MAX_ADDRS + 1);
        rc = mdm_redis_target_cluster(&t, kind, words, n, err, sizeof(err));
    } else {
        const char *a = o->addr ? o->addr : getenv("MDM_REDIS");

        kind = "--redis";
        if (a == NULL) {
            a = "127.0.0.1:6379";
        }
        /* a bare socket path, as before */
        snprintf(addr, sizeof(addr), "%s%s", a[0] == '/' ? "unix:" : "", a);
        rc = mdm_redis_target_single(&t, kind, addr, err, sizeof(err));
    }
    if (rc == 0 && o->user) {
        if (strlen(o->user) >= sizeof(t.user) || o->user[0] == '\0') {
            snprintf(err, sizeof(err), "--redis-user: invalid user name");
            rc = -1;
        } else {
            snprintf(t.user, sizeof(t.user), "%s", o->user);
        }
    }
    if (rc == 0 && o->password_file) {
        rc = mdm_redis_target_password(
            t.password, sizeof(t.password), "--redis-password-file",
            o->password_file, &loose, err, sizeof(err));
        if (rc == 0 && loose) {
            fprintf(stderr,
                    "mdmctl: %s --redis-password-file: \"%s\" is "
                    "readable by group or others\n",
                    MDM_ID_REDIS_PWFILE_MODE, o->password_file);
        }
    }
    if (rc == 0 && o->sentinel_password_file) {
        rc = mdm_redis_target_password(
            t.sentinel_password, sizeof(t.sentinel_password),
            "--redis-sentinel-password-file", o->sentinel_password_file, &loose,
            err, sizeof(err));
    }
    if (rc != 0) {
        fprintf(stderr, "mdmctl: %s\n", err);
        return NULL;
    }
    t.connect_timeout_ms = 5000;
    t.timeout_ms = 5000;
    l = mdm_redislink_new(&t, log_link, NULL);
    memset(t.password, 0, sizeof(t.password));
    memset(t.sentinel_password, 0, sizeof(t.sentinel_password));
    if (l == NULL || mdm_redislink_ready(l) != 0) {
        fprintf(stderr, "mdmctl: cannot reach Redis (%s)\n",
                mdm_redis_target_name(&t, buf, sizeof(buf)));
        mdm_redislink_free(l);
        return NULL;
    }
    return l;
}

/* dep token-decrypt --redis ADDR: the global options, ADDR "-" as they
 * are, another ADDR in place of the global address (mdmctl_dep.h) */
static const redis_opts_t *dep_ro;

static mdm_redislink_t *
dep_connect(const char *addr)
{
    redis_opts_t o = *dep_ro;

    if (strcmp(addr, "-") != 0) {
        o.addr = addr;
        o.sentinel = NULL;
        o.cluster = NULL;
    }
    return connect_redis(&o);
}

static char *
read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL, *n;
    size_t cap = 0, got = 0, r;

    if (f == NULL) {
        fprintf(stderr, "mdmctl: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    do {
        if (got == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > 64 * 1024 * 1024 || (n = realloc(buf, cap)) == NULL) {
                fprintf(stderr, "mdmctl: %s is too large\n", path);
                free(buf);
                buf = NULL;
                break;
            }
            buf = n;
        }
        r = fread(buf + got, 1, cap - got, f);
        got += r;
    } while (r > 0);
    if (f != stdin) {
        fclose(f);
    }
    *len = got;
    return buf;
}

/* Split "a,b,c" in place. */
static size_t
split_ids(char *s, const char **ids, size_t max)
{
    size_t n = 0;
    char *tok, *save = NULL;

    for (tok = strtok_r(s, ",", &save); tok && n < max;
         tok = strtok_r(NULL, ",", &save)) {
        ids[n++] = tok;
    }
    return n;
}

static void
log_stderr(void *data, mdm_log_level_t level, const char *id, const char *msg)
{
    (void) data;
    (void) level;
    fprintf(stderr, "mdmctl: %s %s\n", id, msg);
}

static json_t *
hash_json(const redisReply *x)
{
    json_t *o = json_object();
    size_t i;

    for (i = 0; x && x->type == REDIS_REPLY_ARRAY && i + 1 < x->elements;
         i += 2) {
        json_object_set_new(o, x->element[i]->str,
                            json_string(x->element[i + 1]->str));
    }
    return o;
}

/* mdm-pushd's status hashes (see pushd/ and core/lua/KEYS.md): the set
 * <P>pushd names the daemons, <P>pushd:<name> holds one daemon's totals,
 * <P>pushd:<name>:topics its topics, <P>pushd:<name>:<topic> each
 * topic's certificate and counters. */
static int
push_status(mdm_redislink_t *rc, const char *prefix)
{
    redisReply *names, *d, *topics, *t;
    json_t *out = json_object(), *daemons = json_array(), *dj, *tl;
    time_t now = time(NULL);
    size_t i, k;
    char *s, key[1024];

    snprintf(key, sizeof(key), "%spushd", prefix);
    names = mdm_redislink_cmdl(rc, "SMEMBERS", key, NULL);
    if (names == NULL || names->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "mdmctl: Redis failed: %s\n",
                names ? names->str : "no connection");
        return 2;
    }
    for (i = 0; i < names->elements; i++) {
        const char *n = names->element[i]->str;

        snprintf(key, sizeof(key), "%spushd:%s", prefix, n);
        d = mdm_redislink_cmdl(rc, "HGETALL", key, NULL);
        snprintf(key, sizeof(key), "%spushd:%s:topics", prefix, n);
        topics = mdm_redislink_cmdl(rc, "SMEMBERS", key, NULL);
        dj = hash_json(d);
        json_object_set_new(dj, "name", json_string(n));
        if (json_string_value(json_object_get(dj, "updated"))) {
            /* a daemon that stopped updating is stopped or stuck */
            long long upd =
                atoll(json_string_value(json_object_get(dj, "updated")));
            json_object_set_new(dj, "seconds_since_update",
                                json_integer((json_int_t) (now - upd)));
        }
        tl = json_array();
        for (k = 0; topics && topics->type == REDIS_REPLY_ARRAY &&
                    k < topics->elements;
             k++) {
            snprintf(key, sizeof(key), "%spushd:%s:%s", prefix, n,
                     topics->element[k]->str);
            t = mdm_redislink_cmdl(rc, "HGETALL", key, NULL);
            json_array_append_new(tl, hash_json(t));
            if (t) {
                freeReplyObject(t);
            }
        }
        json_object_set_new(dj, "topics", tl);
        json_array_append_new(daemons, dj);
        if (d) {
            freeReplyObject(d);
        }
        if (topics) {
            freeReplyObject(topics);
        }
    }
    freeReplyObject(names);
    json_object_set_new(out, "daemons", daemons);
    s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s) {
        puts(s);
    }
    free(s);
    json_decref(out);
    return 0;
}

/* Percent-encode what the admin router would decode or split on. */
static void
path_add(char *path, size_t size, const char *seg)
{
    size_t n = strlen(path);

    if (n + 1 < size) {
        path[n++] = '/';
    }
    for (; *seg && n + 4 < size; seg++) {
        if (*seg == '%' || *seg == '?' || *seg == '#') {
            n += (size_t) snprintf(path + n, size - n, "%%%02X",
                                   (unsigned char) *seg);
        } else {
            path[n++] = *seg;
        }
    }
    path[n] = '\0';
}

/*
 * mdmctl ddm ...: through the admin API's router (/ddm/...), the same
 * answers as over HTTP. Fills method, path and the body (malloc'd).
 */
static int
ddm_args(int argc, char **argv, const char **method, char *path, size_t size,
         char **body, size_t *blen)
{
    const char *sub = argc > 0 ? argv[0] : "";
    json_t *j, *sets, *decls;
    int i;

    *method = "GET";
    snprintf(path, size, "/ddm");
    if (strcmp(sub, "put") == 0 && argc == 2) {
        *method = "POST";
        path_add(path, size, "declarations");
        *body = read_all(argv[1], blen);
        return *body ? 0 : 2;
    } else if ((strcmp(sub, "get") == 0 || strcmp(sub, "delete") == 0) &&
               argc <= 2 && (argc == 2 || sub[0] == 'g')) {
        *method = sub[0] == 'g' ? "GET" : "DELETE";
        path_add(path, size, "declarations");
        if (argc == 2) {
            path_add(path, size, argv[1]);
        }
    } else if (strcmp(sub, "set") == 0 && argc >= 2) {
        *method = "POST";
        path_add(path, size, "sets");
        path_add(path, size, argv[1]);
        decls = json_array();
        for (i = 2; i < argc; i++) {
            json_array_append_new(decls, json_string(argv[i]));
        }
        j = json_pack("{s:o}", "declarations", decls);
        *body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        *blen = *body ? strlen(*body) : 0;
    } else if ((strcmp(sub, "set-add") == 0 ||
                strcmp(sub, "set-remove") == 0) &&
               argc == 3) {
        *method = sub[4] == 'a' ? "POST" : "DELETE";
        path_add(path, size, "sets");
        path_add(path, size, argv[1]);
        path_add(path, size, argv[2]);
    } else if ((strcmp(sub, "sets") == 0 && argc <= 2) ||
               (strcmp(sub, "set-delete") == 0 && argc == 2)) {
        *method = sub[3] == '-' ? "DELETE" : "GET";
        path_add(path, size, "sets");
        if (argc == 2) {
            path_add(path, size, argv[1]);
        }
    } else if ((strcmp(sub, "assign") == 0 || strcmp(sub, "unassign") == 0) &&
               argc >= 3) {
        *method = "POST";
        path_add(path, size, sub);
        path_add(path, size, argv[1]);
        sets = json_array();
        decls = json_array();
        for (i = 2; i < argc; i++) {
            if (strncmp(argv[i], "set:", 4) == 0) {
                json_array_append_new(sets, json_string(argv[i] + 4));
            } else if (strncmp(argv[i], "declaration:", 12) == 0) {
                json_array_append_new(decls, json_string(argv[i] + 12));
            } else {
                fprintf(stderr,
                        "mdmctl: ddm %s: \"%s\" is neither set:NAME nor "
                        "declaration:ID\n",
                        sub, argv[i]);
                json_decref(sets);
                json_decref(decls);
                return 2;
            }
        }
        j = json_pack("{s:o,s:o}", "sets", sets, "declarations", decls);
        *body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        *blen = *body ? strlen(*body) : 0;
    } else if ((strcmp(sub, "show") == 0 || strcmp(sub, "status") == 0 ||
                strcmp(sub, "sync") == 0) &&
               argc == 2) {
        *method = strcmp(sub, "sync") == 0 ? "POST" : "GET";
        path_add(path, size, sub[1] == 'h' ? "enrollments" : sub);
        path_add(path, size, argv[1]);
    } else {
        fprintf(stderr, "mdmctl: ddm: unknown or incomplete command\n\n%s",
                usage);
        return 2;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *prefix = "mdm:";
    redis_opts_t ro = {NULL,
                       NULL,
                       NULL,
                       getenv("MDM_REDIS_USER"),
                       getenv("MDM_REDIS_PASSWORD_FILE"),
                       NULL};
    const char *ids[1024];
    mdm_admin_args_t a;
    mdm_conf_t *conf;
    mdm_redislink_t *rc;
    mdm_req_t *r;
    const mdm_response_t *resp;
    char err[512], *body = NULL, *op;
    char ca_cert[1024] = "", ca_key[1024] = "", scep_path[512];
    char renew_q[32] = "";
    char ddm_path[2048];
    const char *ddm_method = NULL;
    char enc_path[600] = "";
    size_t ddm_blen = 0;
    const char *ca_pass = NULL;
    int i, status;

    memset(&a, 0, sizeof(a));
    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            ro.addr = argv[++i];
        } else if (strcmp(argv[i], "--redis-sentinel") == 0 && i + 1 < argc) {
            ro.sentinel = argv[++i];
        } else if (strcmp(argv[i], "--redis-cluster") == 0 && i + 1 < argc) {
            ro.cluster = argv[++i];
        } else if (strcmp(argv[i], "--redis-user") == 0 && i + 1 < argc) {
            ro.user = argv[++i];
        } else if (strcmp(argv[i], "--redis-password-file") == 0 &&
                   i + 1 < argc) {
            ro.password_file = argv[++i];
        } else if (strcmp(argv[i], "--redis-sentinel-password-file") == 0 &&
                   i + 1 < argc) {
            ro.sentinel_password_file = argv[++i];
        } else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
            snprintf(ca_cert, sizeof(ca_cert), "%s/ca.pem", argv[++i]);
            snprintf(ca_key, sizeof(ca_key), "%s/ca.key", argv[i]);
        } else if (strcmp(argv[i], "--ca-cert") == 0 && i + 1 < argc) {
            snprintf(ca_cert, sizeof(ca_cert), "%s", argv[++i]);
        } else if (strcmp(argv[i], "--ca-key") == 0 && i + 1 < argc) {
            snprintf(ca_key, sizeof(ca_key), "%s", argv[++i]);
        } else if (strcmp(argv[i], "--ca-key-pass-file") == 0 && i + 1 < argc) {
            ca_pass = argv[++i];
        } else {
            fprintf(stderr, "mdmctl: unknown option %s\n\n%s", argv[i], usage);
            return 2;
        }
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    op = argv[i++];
    argc -= i;
    argv += i;
    /* certificate tooling: offline, own argument parsing */
    if (strcmp(op, "ca") == 0) {
        return mdmctl_ca(argc, argv);
    }
    if (strcmp(op, "profile") == 0 &&
        !(argc > 0 && strcmp(argv[0], "encrypt") == 0)) {
        return mdmctl_profile(argc, argv);
    }
    if (strcmp(op, "push") == 0 && argc > 0 && mdmctl_push_offline(argv[0])) {
        return mdmctl_push(argc, argv);
    }
    if (strcmp(op, "dep") == 0) {
        dep_ro = &ro;
        return mdmctl_dep(argc, argv, dep_connect);
    }
    if (strcmp(op, "scep") == 0) {
        int one = argc == 2 && (strcmp(argv[0], "revoke") == 0 ||
                                strcmp(argv[0], "approve") == 0 ||
                                strcmp(argv[0], "reject") == 0);

        if (argc < 1 || (strcmp(argv[0], "challenge") == 0 && argc > 2) ||
            (strcmp(argv[0], "pending") == 0 && argc != 1) ||
            (strcmp(argv[0], "challenge") != 0 &&
             strcmp(argv[0], "pending") != 0 && !one)) {
            fprintf(stderr,
                    "mdmctl: scep challenge [TTL] | scep revoke SERIAL | "
                    "scep pending | scep approve TXID | scep reject TXID"
                    "\n\n%s",
                    usage);
            return 2;
        }
        if (ca_cert[0] == '\0' || ca_key[0] == '\0') {
            fprintf(stderr,
                    "mdmctl: scep %s needs the SCEP CA: --ca DIR, or "
                    "--ca-cert FILE --ca-key FILE\n",
                    argv[0]);
            return 2;
        }
        if (argv[0][0] == 'c') {
            snprintf(scep_path, sizeof(scep_path), "/scep/challenges");
        } else if (argv[0][0] == 'p') {
            snprintf(scep_path, sizeof(scep_path), "/scep/pending");
        } else if (strcmp(argv[0], "approve") == 0 ||
                   strcmp(argv[0], "reject") == 0) {
            /* a transactionID in one path segment: '/', '%' escaped */
            size_t o = (size_t) snprintf(scep_path, sizeof(scep_path),
                                         "/scep/pending/");
            const char *t;

            for (t = argv[1]; *t && o + 12 < sizeof(scep_path); t++) {
                if (*t == '/' || *t == '%' || *t == '?' || *t == '#') {
                    o += (size_t) snprintf(scep_path + o, sizeof(scep_path) - o,
                                           "%%%02X", (unsigned char) *t);
                } else {
                    scep_path[o++] = *t;
                }
            }
            if (*t) {
                fprintf(stderr, "mdmctl: transactionID too long\n");
                return 2;
            }
            snprintf(scep_path + o, sizeof(scep_path) - o, "/%s", argv[0]);
        } else {
            snprintf(scep_path, sizeof(scep_path), "/scep/revoke/%.100s",
                     argv[1]);
        }
    }
    if (strcmp(op, "renewals") == 0) {
        if (!(argc == 0 || (argc == 2 && strcmp(argv[0], "--days") == 0))) {
            fprintf(stderr, "mdmctl: renewals [--days N]\n\n%s", usage);
            return 2;
        }
        snprintf(renew_q, sizeof(renew_q), "days=%.20s",
                 argc == 2 ? argv[1] : "");
        argc = 0;
    }
    if (argc > 0 && strcmp(argv[argc - 1], "--nopush") == 0) {
        a.nopush = 1;
        argc--;
    }
    if (strcmp(op, "ddm") == 0) {
        status = ddm_args(argc, argv, &ddm_method, ddm_path, sizeof(ddm_path),
                          &body, &ddm_blen);
        if (status != 0) {
            return status;
        }
    }

#define NEED(n)                                                                \
    if (argc != (n)) {                                                         \
        fprintf(stderr, "mdmctl: %s takes %d argument(s)\n\n%s", op, (n),      \
                usage);                                                        \
        return 2;                                                              \
    }
    if (strcmp(op, "scep") == 0 || ddm_method != NULL || renew_q[0]) {
        /* through the admin API's router: the same answers as over HTTP */
        a.op = 0;
    } else if (strcmp(op, "profile") == 0) {
        /* profile encrypt ID FILE: POST /profiles/encrypted/ID, the id in
         * one path segment ('/', '%' escaped) */
        size_t o;
        const char *t;

        NEED(3);
        o = (size_t) snprintf(enc_path, sizeof(enc_path),
                              "/profiles/encrypted/");
        for (t = argv[1]; *t && o + 4 < sizeof(enc_path); t++) {
            if (*t == '/' || *t == '%' || *t == '?' || *t == '#') {
                o += (size_t) snprintf(enc_path + o, sizeof(enc_path) - o,
                                       "%%%02X", (unsigned char) *t);
            } else {
                enc_path[o++] = *t;
            }
        }
        enc_path[o] = '\0';
        if (*t) {
            fprintf(stderr, "mdmctl: enrollment id too long\n");
            return 2;
        }
        body = read_all(argv[2], &ddm_blen);
        if (body == NULL) {
            return 2;
        }
    } else if (strcmp(op, "enqueue") == 0) {
        NEED(2);
        a.op = MDM_ADMIN_ENQUEUE;
        body = read_all(argv[1], &a.body_len);
        if (body == NULL) {
            return 2;
        }
        a.body = (const unsigned char *) body;
    } else if (strcmp(op, "push") == 0 && argc == 1 &&
               strcmp(argv[0], "status") == 0) {
        rc = connect_redis(&ro);
        if (rc == NULL) {
            return 2;
        }
        status = push_status(rc, prefix);
        mdm_redislink_free(rc);
        return status;
    } else if (strcmp(op, "push") == 0) {
        NEED(1);
        a.op = MDM_ADMIN_PUSH;
    } else if (strcmp(op, "show") == 0) {
        NEED(1);
        a.op = MDM_ADMIN_ENROLLMENT;
    } else if (strcmp(op, "queue") == 0) {
        NEED(1);
        a.op = MDM_ADMIN_QUEUE;
    } else if (strcmp(op, "clear") == 0) {
        NEED(1);
        a.op = MDM_ADMIN_CLEAR;
    } else if (strcmp(op, "delete") == 0 || strcmp(op, "result") == 0) {
        NEED(2);
        a.op = op[0] == 'd' ? MDM_ADMIN_DELETE : MDM_ADMIN_RESULT;
        a.uuid = argv[1];
    } else if (strcmp(op, "revoke") == 0) {
        if (argc != 1 && argc != 2) {
            fprintf(stderr, "mdmctl: revoke takes 1 or 2 arguments\n\n%s",
                    usage);
            return 2;
        }
        a.op = MDM_ADMIN_REVOKE;
        a.uuid = argc == 2 ? argv[1] : NULL;
    } else {
        fprintf(stderr, "mdmctl: unknown command \"%s\"\n\n%s", op, usage);
        return 2;
    }
    a.ids = ids;
    if (ddm_method == NULL && enc_path[0] == '\0') {
        a.nids = split_ids(argv[0], ids, sizeof(ids) / sizeof(ids[0]));
    }

    conf = mdm_conf_new();
    if (conf == NULL ||
        mdm_conf_set(conf, "prefix", prefix, err, sizeof(err)) != 0 ||
        mdm_conf_set(conf, "identity", "none", err, sizeof(err)) != 0 ||
        mdm_conf_set(conf, "binding", "off", err, sizeof(err)) != 0) {
        fprintf(stderr, "mdmctl: --prefix: %s\n", err);
        return 2;
    }
    if (ca_cert[0] &&
        (mdm_conf_set(conf, "scep.ca_cert", ca_cert, err, sizeof(err)) != 0 ||
         mdm_conf_set(conf, "scep.ca_key", ca_key, err, sizeof(err)) != 0 ||
         (ca_pass && mdm_conf_set(conf, "scep.ca_key_pass_file", ca_pass, err,
                                  sizeof(err)) != 0) ||
         mdm_conf_set(conf, "scep.challenge", "dynamic", err, sizeof(err)) !=
             0)) {
        fprintf(stderr, "mdmctl: %s\n", err);
        mdm_conf_free(conf);
        return 2;
    }
    if (mdm_conf_finish(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "mdmctl: %s\n", err);
        mdm_conf_free(conf);
        return 2;
    }
    rc = connect_redis(&ro);
    if (rc == NULL) {
        mdm_conf_free(conf);
        free(body);
        return 2;
    }
    if (strcmp(op, "scep") == 0) {
        char q[40] = "";

        if (argv[0][0] == 'c' && argc == 2) {
            snprintf(q, sizeof(q), "ttl=%.20s", argv[1]);
        }
        r = argv[0][0] == 'p'
                ? mdm_req_new_admin_http(conf, "GET", 3, scep_path,
                                         strlen(scep_path), q, 0, NULL, 0)
                : mdm_req_new_admin_http(conf, "POST", 4, scep_path,
                                         strlen(scep_path), q, strlen(q), NULL,
                                         0);
    } else if (enc_path[0]) {
        r = mdm_req_new_admin_http(conf, "POST", 4, enc_path, strlen(enc_path),
                                   a.nopush ? "nopush=1" : "", a.nopush ? 8 : 0,
                                   (const unsigned char *) body, ddm_blen);
    } else if (renew_q[0]) {
        /* "days=" alone: the default */
        r = mdm_req_new_admin_http(conf, "GET", 3, "/renewals", 9, renew_q,
                                   strlen(renew_q) > 5 ? strlen(renew_q) : 0,
                                   NULL, 0);
    } else if (ddm_method != NULL) {
        r = mdm_req_new_admin_http(conf, ddm_method, strlen(ddm_method),
                                   ddm_path, strlen(ddm_path),
                                   a.nopush ? "nopush=1" : "", a.nopush ? 8 : 0,
                                   (const unsigned char *) body, ddm_blen);
    } else {
        r = mdm_req_new_admin(conf, &a);
    }
    if (r == NULL) {
        fprintf(stderr, "mdmctl: out of memory\n");
        return 2;
    }
    mdm_req_set_logger(r, log_stderr, NULL);
    if (mdm_req_start(r) == MDM_STEP_REDIS) {
        mdm_redislink_exec(rc, r);
    }
    resp = mdm_req_response(r);
    status = resp->status;
    if (resp->body_len) {
        fwrite(resp->body, 1, resp->body_len, stdout);
        fputc('\n', stdout);
    }
    if (status == 503) {
        fprintf(stderr, "mdmctl: Redis failed (see the message above)\n");
    }
    mdm_req_free(r);
    mdm_redislink_free(rc);
    mdm_conf_free(conf);
    free(body);
    return status >= 200 && status < 300 ? 0 : (status == 503 ? 2 : 1);
}
