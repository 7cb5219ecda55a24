/*
 * The configuration file reader of the sidecar daemons (mdm_conffile.c):
 * one "name value..." per line, words split on blanks, # starts a
 * comment. Each daemon keeps its own options; this reads the lines and
 * gives the checks they have in common, with errors as "file:line: option:
 * why". Calls only libc and mdm_listen_parse_addr().
 */
#ifndef MDM_CONFFILE_H
#define MDM_CONFFILE_H

#include <stddef.h>

#define MDM_CONF_WORDS 32 /* words on a line at the most */

/* A numeric option: a long at off in the configuration, in min..max. */
typedef struct {
    const char *name;
    size_t off;
    long min, max;
} mdm_conf_num_t;

#define MDM_CONF_NUM(type, f, lo, hi)                                          \
    {                                                                          \
#f, offsetof(type, f), lo, hi                                          \
    }

/* What a daemon's configuration has in common with the other's: one
 * option of several words (multi, a line of at least multi_min words;
 * "cert", "endpoint"), every other option takes one value; its numbers,
 * metrics_listen (a char * at metrics_off; example shown in the error)
 * and log (an int at verbose_off: info 0, debug 1). */
typedef struct {
    const char *multi;
    int multi_min;
    const mdm_conf_num_t *nums;
    size_t nnums;
    size_t metrics_off;
    const char *metrics_example;
    size_t verbose_off;
} mdm_conf_common_t;

/* The mdm_conf_common_t of a configuration struct type with the members
 * metrics_listen and verbose. */
#define MDM_CONF_COMMON(type, multi, min, nums, example)                       \
    {                                                                          \
        (multi), (min), (nums), sizeof(nums) / sizeof((nums)[0]),              \
            offsetof(type, metrics_listen), (example), offsetof(type, verbose) \
    }

/* One line of words (ntok >= 1): 0, or -1 with why in err. */
typedef int (*mdm_conf_line_pt)(void *conf, char **tok, int ntok, char *err,
                                size_t errlen);

/* Read path: the lines of the options of common are taken here
 * (mdm_conf_common_opt), each other line that is not blank is handed to
 * line(); the first refusal stops with "path:line: why" in err. 0 or
 * -1. */
int mdm_conf_read(const char *path, const mdm_conf_common_t *common,
                  mdm_conf_line_pt line, void *conf, char *err, size_t errlen);

/* *dst = a copy of v (the old one freed): 0, or -1 out of memory. */
int mdm_conf_set_str(char **dst, const char *v);

/* v as a decimal number in min..max: 0, or -1. */
int mdm_conf_num(const char *v, long min, long max, long *out);

/* When k names one of nums: set it in conf (0), or -1 with "k: expected a
 * number in min..max" in err. 1 when k is none of them. */
int mdm_conf_set_num(void *conf, const mdm_conf_num_t *nums, size_t n,
                     const char *k, const char *v, char *err, size_t errlen);

/* A line of an option of d: set it (0) or refuse it (-1, why in err;
 * "k: expected one value" for a line of more or fewer words that is not
 * d's several-word option); 1 when k is none of them: d->multi, or a
 * one-value option "k v" of the daemon's own. */
int mdm_conf_common_opt(void *conf, const mdm_conf_common_t *d, char **tok,
                        int ntok, char *err, size_t errlen);

/* "unknown option \"k\"" in err; -1. */
int mdm_conf_unknown(const char *k, char *err, size_t errlen);

/* The metrics_listen option: "off" (NULL) or IP:PORT; example is shown in
 * the error. 0 or -1. */
int mdm_conf_metrics_listen(char **dst, const char *v, const char *example,
                            char *err, size_t errlen);

/* The log option: info (0) or debug (1). 0 or -1. */
int mdm_conf_log(int *verbose, const char *v, char *err, size_t errlen);

#endif
