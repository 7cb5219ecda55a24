/* The metrics counter block and its Prometheus rendering (mdm_metrics.h). */
#include "mdm_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const mdm_metrics_types[MDM_METRICS_TYPES] = {
    "Authenticate",
    "TokenUpdate",
    "CheckOut",
    "UserAuthenticate",
    "SetBootstrapToken",
    "GetBootstrapToken",
    "DeclarativeManagement",
    "GetToken",
    "ReturnToService",
    "Idle",
    "Acknowledged",
    "Error",
    "CommandFormatError",
    "NotNow",
    MDM_METRICS_TYPE_ADMIN,
    MDM_METRICS_TYPE_SCEP,
    MDM_METRICS_TYPE_PROFILE,
    "other", /* a message type the core does not know */
    "none"   /* refused before the message was read */
};

#define MDM_METRICS_TYPE_OTHER (MDM_METRICS_TYPES - 2)
#define MDM_METRICS_TYPE_NONE  (MDM_METRICS_TYPES - 1)

/* the last one stands for every other status */
static const int mdm_metrics_statuses[MDM_METRICS_STATUSES] = {
    200, 204, 207, 400, 401, 403, 404, 405,
    409, 410, 413, 500, 502, 503, 504, 0};

/* upper bounds, microseconds; the last bucket is +Inf */
static const uint64_t mdm_metrics_le[MDM_METRICS_BUCKETS - 1] = {
    250,   500,    1000,   2500,   5000,    10000,  25000,
    50000, 100000, 250000, 500000, 1000000, 2500000};

static const char *const mdm_metrics_errs[MDM_METRICS_ERRS] = {
    "connect", "timeout", "io", "reply"};

size_t
mdm_metrics_request(const char *type, int status)
{
    size_t t, s;

    if (type == NULL) {
        t = MDM_METRICS_TYPE_NONE;
    } else {
        for (t = 0; t < MDM_METRICS_TYPE_OTHER; t++) {
            if (strcmp(type, mdm_metrics_types[t]) == 0) {
                break;
            }
        }
    }
    for (s = 0; s < MDM_METRICS_STATUSES - 1; s++) {
        if (mdm_metrics_statuses[s] == status) {
            break;
        }
    }
    return MDM_METRICS_REQUESTS + t * MDM_METRICS_STATUSES + s;
}

size_t
mdm_metrics_refusal(const char *id)
{
    unsigned g = 0, n = 0;
    int i;

    if (id == NULL || strncmp(id, "MDM", 3) != 0) {
        return MDM_METRICS_REFUSAL_OTHER;
    }
    for (i = 3; i < 8; i++) {
        if (id[i] < '0' || id[i] > '9') {
            return MDM_METRICS_REFUSAL_OTHER;
        }
        if (i < 5) {
            g = g * 10 + (unsigned) (id[i] - '0');
        } else {
            n = n * 10 + (unsigned) (id[i] - '0');
        }
    }
    if (id[8] != '\0' || g >= MDM_METRICS_ID_GROUPS ||
        n >= MDM_METRICS_ID_NUMS) {
        return MDM_METRICS_REFUSAL_OTHER;
    }
    return MDM_METRICS_REFUSALS + g * MDM_METRICS_ID_NUMS + n;
}

size_t
mdm_metrics_redis_bucket(uint64_t usec)
{
    size_t b;

    for (b = 0; b < MDM_METRICS_BUCKETS - 1; b++) {
        if (usec <= mdm_metrics_le[b]) {
            break;
        }
    }
    return MDM_METRICS_REDIS_BUCKET + b;
}

/* ---------------------------------------------------------------- */
/* rendering                                                        */

typedef struct {
    char *buf;
    size_t len;
    size_t off; /* may pass len: the length needed */
} mdm_metrics_out_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
mdm_metrics_printf(mdm_metrics_out_t *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(o->off < o->len ? o->buf + o->off : NULL,
                  o->off < o->len ? o->len - o->off : 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        o->off += (size_t) n;
    }
}

static void
mdm_metrics_head(mdm_metrics_out_t *o, const char *name, const char *type,
                 const char *help)
{
    mdm_metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                       type);
}

/* a value in seconds from microseconds, exactly; trim: no trailing zeros */
static void
mdm_metrics_seconds(mdm_metrics_out_t *o, uint64_t usec, int trim)
{
    char s[32];
    size_t n;

    n = (size_t) snprintf(s, sizeof(s), "%llu.%06llu",
                          (unsigned long long) (usec / 1000000),
                          (unsigned long long) (usec % 1000000));
    while (trim && n > 0 && s[n - 1] == '0') {
        n--;
    }
    if (trim && n > 0 && s[n - 1] == '.') {
        n--;
    }
    mdm_metrics_printf(o, "%.*s", (int) n, s);
}

size_t
mdm_metrics_render(const uint64_t *m, char *buf, size_t len)
{
    mdm_metrics_out_t o = {buf, len, 0};
    uint64_t v, cum;
    size_t t, s, i;

    if (len > 0) {
        buf[0] = '\0';
    }

    mdm_metrics_head(&o, "mdm_requests_total", "counter",
                     "Requests at MDM locations by message type (or kind) "
                     "and HTTP status.");
    for (t = 0; t < MDM_METRICS_TYPES; t++) {
        for (s = 0; s < MDM_METRICS_STATUSES; s++) {
            v = m[MDM_METRICS_REQUESTS + t * MDM_METRICS_STATUSES + s];
            if (v == 0) {
                continue;
            }
            if (mdm_metrics_statuses[s]) {
                mdm_metrics_printf(&o,
                                   "mdm_requests_total{type=\"%s\","
                                   "status=\"%d\"} %llu\n",
                                   mdm_metrics_types[t],
                                   mdm_metrics_statuses[s],
                                   (unsigned long long) v);
            } else {
                mdm_metrics_printf(&o,
                                   "mdm_requests_total{type=\"%s\","
                                   "status=\"other\"} %llu\n",
                                   mdm_metrics_types[t],
                                   (unsigned long long) v);
            }
        }
    }

    mdm_metrics_head(&o, "mdm_refusals_total", "counter",
                     "Refused requests by log message id.");
    for (i = 0; i < MDM_METRICS_ID_GROUPS * MDM_METRICS_ID_NUMS; i++) {
        v = m[MDM_METRICS_REFUSALS + i];
        if (v) {
            mdm_metrics_printf(
                &o, "mdm_refusals_total{id=\"MDM%02u%03u\"} %llu\n",
                (unsigned) (i / MDM_METRICS_ID_NUMS),
                (unsigned) (i % MDM_METRICS_ID_NUMS), (unsigned long long) v);
        }
    }
    v = m[MDM_METRICS_REFUSAL_OTHER];
    if (v) {
        mdm_metrics_printf(&o, "mdm_refusals_total{id=\"other\"} %llu\n",
                           (unsigned long long) v);
    }

    mdm_metrics_head(&o, "mdm_redis_seconds", "histogram",
                     "Time a request waited for its Redis replies (all "
                     "its round trips; usually one).");
    cum = 0;
    for (i = 0; i < MDM_METRICS_BUCKETS; i++) {
        cum += m[MDM_METRICS_REDIS_BUCKET + i];
        if (i < MDM_METRICS_BUCKETS - 1) {
            mdm_metrics_printf(&o, "mdm_redis_seconds_bucket{le=\"");
            mdm_metrics_seconds(&o, mdm_metrics_le[i], 1);
            mdm_metrics_printf(&o, "\"} %llu\n", (unsigned long long) cum);
        } else {
            mdm_metrics_printf(&o,
                               "mdm_redis_seconds_bucket{le=\"+Inf\"} %llu\n",
                               (unsigned long long) cum);
        }
    }
    mdm_metrics_printf(&o, "mdm_redis_seconds_sum ");
    mdm_metrics_seconds(&o, m[MDM_METRICS_REDIS_SUM_US], 0);
    mdm_metrics_printf(&o, "\nmdm_redis_seconds_count %llu\n",
                       (unsigned long long) m[MDM_METRICS_REDIS_COUNT]);

    mdm_metrics_head(&o, "mdm_redis_errors_total", "counter",
                     "Requests that Redis failed, by kind.");
    for (i = 0; i < MDM_METRICS_ERRS; i++) {
        mdm_metrics_printf(
            &o, "mdm_redis_errors_total{kind=\"%s\"} %llu\n",
            mdm_metrics_errs[i],
            (unsigned long long) m[MDM_METRICS_REDIS_ERRORS + i]);
    }

    mdm_metrics_head(&o, "mdm_identity_cache_total", "counter",
                     "Certificate chain checks by cache result.");
    mdm_metrics_printf(&o,
                       "mdm_identity_cache_total{result=\"hit\"} %llu\n"
                       "mdm_identity_cache_total{result=\"miss\"} %llu\n",
                       (unsigned long long) m[MDM_METRICS_CACHE_HIT],
                       (unsigned long long) m[MDM_METRICS_CACHE_MISS]);
    mdm_metrics_head(&o, "mdm_identity_direct_total", "counter",
                     "Mdm-Signatures verified directly from their "
                     "SignerInfo.");
    mdm_metrics_printf(&o, "mdm_identity_direct_total %llu\n",
                       (unsigned long long) m[MDM_METRICS_DIRECT]);
    return o.off;
}
