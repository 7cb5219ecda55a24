/* The one query-string parser: raw "a=1&b&c=x" pairs, values left encoded. */
#include "mdm_internal.h"

#include <string.h>

int
mdm_query_find(const char *q, size_t qlen, const char *name, const char **v,
               size_t *vl)
{
    size_t n = strlen(name), i = 0, e;

    while (q && i < qlen) {
        e = i;
        while (e < qlen && q[e] != '&') {
            e++;
        }
        if (e - i >= n && memcmp(q + i, name, n) == 0 &&
            (e - i == n || q[i + n] == '=')) {
            *v = e - i == n ? NULL : q + i + n + 1;
            *vl = e - i == n ? 0 : e - i - n - 1;
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

int
mdm_query_flag(const char *q, size_t qlen, const char *name)
{
    const char *v;
    size_t vl;

    if (!mdm_query_find(q, qlen, name, &v, &vl)) {
        return 0;
    }
    return v == NULL || (vl == 1 && v[0] == '1') ||
           (vl == 4 && memcmp(v, "true", 4) == 0) ||
           (vl == 3 && memcmp(v, "yes", 3) == 0);
}

int
mdm_query_is(const char *q, size_t qlen, const char *name, const char *want)
{
    const char *v;
    size_t vl;

    return mdm_query_find(q, qlen, name, &v, &vl) && v && vl == strlen(want) &&
           memcmp(v, want, vl) == 0;
}
