/* mdmctl dep keypair | token-decrypt | profile: Apple Business Manager
 * (Automated Device Enrollment, DEP) material, offline except for
 * token-decrypt --redis. */
#ifndef MDMCTL_DEP_H
#define MDMCTL_DEP_H

struct mdm_redislink_s;

/** Opens mdmctl's Redis link for token-decrypt --redis ADDR: ADDR "-"
 * takes the global connection options as they are (one server,
 * Sentinel or Cluster); another ADDR replaces the global address, with
 * the global AUTH options. NULL: the reason is printed. */
typedef struct mdm_redislink_s *(*mdmctl_connect_fn)(const char *addr);

/** "mdmctl dep SUB ...": argv[0] is the subcommand. Exit code: 0, 1
 * refused or failed, 2 usage or Redis connection. */
int mdmctl_dep(int argc, char **argv, mdmctl_connect_fn connect);

/** Usage text, for mdmctl --help (a literal, to concatenate). */
#define MDMCTL_DEP_USAGE                                                       \
    "  dep keypair --out DIR [--cn NAME] [--days N]\n"                         \
    "                     DIR/dep.key (RSA 2048, mode 0600) and the\n"         \
    "                     self-signed DIR/dep.pem to upload to Apple\n"        \
    "                     Business Manager (the server token is\n"             \
    "                     encrypted to it); never overwrites\n"                \
    "  dep token-decrypt --key FILE --cert FILE --in TOKEN.p7m\n"              \
    "           (--out FILE | --redis ADDR|- [--prefix P] [--name NAME])\n"    \
    "                     decrypt the server token ABM sends (S/MIME), "       \
    "check\n"                                                                  \
    "                     its JSON (consumer_key, consumer_secret,\n"          \
    "                     access_token, access_secret, access_token_expiry)\n" \
    "                     and write it (mode 0600, never overwrites) or SET\n" \
    "                     it in Redis as <P>dep:token:<NAME> (default\n"       \
    "                     mdm:dep:token:default) through the global Redis\n"   \
    "                     options (--redis - : as they are)\n"                 \
    "  dep profile --url URL [--trust FILE]... [--name NAME] [--out FILE]\n"   \
    "           [--DEP-OPTION VALUE]...\n"                                     \
    "                     the JSON of an ADE profile for\n"                    \
    "                     mdmenrollment.apple.com/profile: url, "              \
    "profile_name,\n"                                                          \
    "                     anchor_certs (--trust certificates, base64 DER)\n"   \
    "                     and the options in README\n"

#endif
