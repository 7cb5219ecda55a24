/*
 * Declarative management, the pure part (mdm_ddm.h): declarations
 * validated, the DeclarationsToken, status reports flattened into status
 * items and nested back. No Redis, no transaction: the fuzz target links
 * this file alone.
 */
#include "mdm_ddm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define MAX_DEPTH 32
#define MAX_ITEMS 4096
#define MAX_NAME  1024

static const char *const categories[] = {"activation", "asset", "configuration",
                                         "management"};

const char *
mdm_ddm_category(const char *type)
{
    size_t i, n;

    if (type == NULL || strncmp(type, "com.apple.", 10) != 0) {
        return NULL;
    }
    for (i = 0; i < sizeof(categories) / sizeof(categories[0]); i++) {
        n = strlen(categories[i]);
        if (strncmp(type + 10, categories[i], n) == 0 && type[10 + n] == '.' &&
            type[11 + n] != '\0') {
            return categories[i];
        }
    }
    return NULL;
}

int
mdm_ddm_category_valid(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(categories) / sizeof(categories[0]); i++) {
        if (strlen(categories[i]) == len &&
            memcmp(s, categories[i], len) == 0) {
            return 1;
        }
    }
    return 0;
}

int
mdm_ddm_name_valid(const char *s, size_t len)
{
    size_t i;

    if (s == NULL || len == 0 || len > 255) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c < 0x21 || c > 0x7e || c == '{' || c == '}' || c == '/' ||
            c == ',') {
            return 0;
        }
    }
    return 1;
}

json_t *
mdm_ddm_decl_parse(const unsigned char *body, size_t len, const char **why)
{
    json_error_t je;
    json_t *j, *v;
    const char *s;

    j = body && len
            ? json_loadb((const char *) body, len, JSON_REJECT_DUPLICATES, &je)
            : NULL;
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        *why = "a declaration must be a JSON object";
        return NULL;
    }
    v = json_object_get(j, "Type");
    if (!json_is_string(v)) {
        *why = "Type: missing or not a string";
        goto fail;
    }
    if (mdm_ddm_category(json_string_value(v)) == NULL) {
        *why = "Type: not com.apple.{activation,asset,configuration,"
               "management}.<name>";
        goto fail;
    }
    v = json_object_get(j, "Identifier");
    s = json_string_value(v);
    if (s == NULL) {
        *why = "Identifier: missing or not a string";
        goto fail;
    }
    if (!mdm_ddm_name_valid(s, json_string_length(v))) {
        *why = "Identifier: must be 1-255 printable characters without "
               "spaces, braces, '/' or ','";
        goto fail;
    }
    v = json_object_get(j, "ServerToken");
    s = json_string_value(v);
    if (s == NULL) {
        *why = "ServerToken: missing or not a string";
        goto fail;
    }
    if (json_string_length(v) == 0 || json_string_length(v) > 1024 ||
        strlen(s) != json_string_length(v)) {
        *why = "ServerToken: must be 1-1024 characters";
        goto fail;
    }
    if (!json_is_object(json_object_get(j, "Payload"))) {
        *why = "Payload: missing or not an object";
        goto fail;
    }
    return j;
fail:
    json_decref(j);
    return NULL;
}

/* ---------------------------------------------------------------- */
/* the DeclarationsToken                                            */

static int
item_cmp(const void *a, const void *b)
{
    return strcmp(((const mdm_ddm_item_t *) a)->id,
                  ((const mdm_ddm_item_t *) b)->id);
}

static void
hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* SHA-256 over "id\0category\0token\0" of each item, sorted by id. */
int
mdm_ddm_token(mdm_ddm_item_t *items, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t i;
    int ok;

    if (ctx == NULL) {
        return -1;
    }
    if (n > 1) {
        qsort(items, n, sizeof(*items), item_cmp);
    }
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (i = 0; ok && i < n; i++) {
        ok = EVP_DigestUpdate(ctx, items[i].id, strlen(items[i].id) + 1) &&
             EVP_DigestUpdate(ctx, items[i].category,
                              strlen(items[i].category) + 1) &&
             EVP_DigestUpdate(ctx, items[i].token, strlen(items[i].token) + 1);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -1;
    }
    hex(md, 32, out);
    return 0;
}

const char *
mdm_ddm_empty_token(void)
{
    /* SHA-256 of nothing */
    return "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
}

void
mdm_ddm_timestamp(time_t t, char out[21])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---------------------------------------------------------------- */
/* status reports                                                   */

void
mdm_ddm_status_clear(mdm_ddm_status_t *s)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        free(s->names[i]);
        free(s->values[i]);
    }
    free(s->names);
    free(s->values);
    free(s->errors);
    json_decref(s->report);
    memset(s, 0, sizeof(*s));
}

static int
add_item(mdm_ddm_status_t *s, const char *name, json_t *v, const char **why)
{
    char **nn, **nv, *val;

    if (s->n == MAX_ITEMS) {
        *why = "too many status items";
        return -1;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;

        nn = realloc(s->names, cap * sizeof(char *));
        if (nn == NULL) {
            goto oom;
        }
        s->names = nn;
        nv = realloc(s->values, cap * sizeof(char *));
        if (nv == NULL) {
            goto oom;
        }
        s->values = nv;
        s->cap = cap;
    }
    val = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    s->names[s->n] = strdup(name);
    s->values[s->n] = val;
    if (val == NULL || s->names[s->n] == NULL) {
        free(val);
        free(s->names[s->n]);
        goto oom;
    }
    s->n++;
    return 0;
oom:
    *why = "out of memory";
    return -1;
}

/* Walk obj under the dotted prefix name[0, len). */
static int
flatten(mdm_ddm_status_t *s, json_t *obj, char *name, size_t len, int depth,
        const char **why)
{
    const char *k;
    json_t *v;
    size_t kl;

    if (depth > MAX_DEPTH) {
        *why = "status items nested too deep";
        return -1;
    }
    json_object_foreach(obj, k, v)
    {
        kl = strlen(k);
        if (kl == 0 || memchr(k, '.', kl) != NULL) {
            *why = "a status item name component is empty or has a '.'";
            return -1;
        }
        if (len + kl + 2 > MAX_NAME) {
            *why = "status item name too long";
            return -1;
        }
        if (len) {
            name[len] = '.';
        }
        memcpy(name + len + (len ? 1 : 0), k, kl + 1);
        if (json_is_object(v) && json_object_size(v) > 0) {
            if (flatten(s, v, name, len + kl + (len ? 1 : 0), depth + 1, why) !=
                0) {
                return -1;
            }
        } else if (add_item(s, name, v, why) != 0) {
            return -1;
        }
        name[len] = '\0';
    }
    return 0;
}

int
mdm_ddm_status_parse(const unsigned char *data, size_t len,
                     mdm_ddm_status_t *out, const char **why)
{
    json_error_t je;
    json_t *items, *errors;
    char name[MAX_NAME];

    memset(out, 0, sizeof(*out));
    if (data == NULL || len == 0) {
        *why = "no Data";
        return -1;
    }
    out->report = json_loadb((const char *) data, len, 0, &je);
    if (out->report == NULL || !json_is_object(out->report)) {
        *why = "Data is not a JSON object";
        goto fail;
    }
    items = json_object_get(out->report, "StatusItems");
    errors = json_object_get(out->report, "Errors");
    if (items && !json_is_object(items)) {
        *why = "StatusItems is not an object";
        goto fail;
    }
    if (errors && !json_is_array(errors)) {
        *why = "Errors is not an array";
        goto fail;
    }
    name[0] = '\0';
    if (items && flatten(out, items, name, 0, 0, why) != 0) {
        goto fail;
    }
    out->errors = errors ? json_dumps(errors, JSON_COMPACT) : strdup("[]");
    if (out->errors == NULL) {
        *why = "out of memory";
        goto fail;
    }
    out->raw = data;
    out->raw_len = len;
    return 0;
fail:
    mdm_ddm_status_clear(out);
    return -1;
}

typedef struct {
    const char *name;
    size_t nlen;
    const char *value;
    size_t vlen;
} nest_item_t;

static int
nest_cmp(const void *a, const void *b)
{
    const nest_item_t *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);

    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

json_t *
mdm_ddm_status_nest(const char *const *names, const size_t *nlens,
                    const char *const *values, const size_t *vlens, size_t n)
{
    json_t *root = json_object(), *o, *next, *v;
    nest_item_t *it = n ? calloc(n, sizeof(*it)) : NULL;
    json_error_t je;
    size_t i, s, e;
    char comp[MAX_NAME];

    if (root == NULL || (n && it == NULL)) {
        json_decref(root);
        free(it);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        it[i].name = names[i];
        it[i].nlen = nlens[i];
        it[i].value = values[i];
        it[i].vlen = vlens[i];
    }
    /* sorted: a leaf "a" comes before "a.b", which then replaces it */
    if (n > 1) {
        qsort(it, n, sizeof(*it), nest_cmp);
    }
    for (i = 0; i < n; i++) {
        o = root;
        for (s = 0; s <= it[i].nlen; s = e + 1) {
            for (e = s; e < it[i].nlen && it[i].name[e] != '.'; e++) {
            }
            if (e - s >= sizeof(comp)) {
                break;
            }
            memcpy(comp, it[i].name + s, e - s);
            comp[e - s] = '\0';
            if (e == it[i].nlen) {
                v = json_loadb(it[i].value, it[i].vlen, JSON_DECODE_ANY, &je);
                if (v == NULL) {
                    v = json_stringn(it[i].value, it[i].vlen);
                }
                json_object_set_new(o, comp, v ? v : json_null());
                break;
            }
            next = json_object_get(o, comp);
            if (!json_is_object(next)) {
                next = json_object();
                json_object_set_new(o, comp, next);
            }
            o = next;
        }
    }
    free(it);
    return root;
}
