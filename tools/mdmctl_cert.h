/* mdmctl's certificate tooling: "ca init" and "profile" (no Redis). */
#ifndef MDMCTL_CERT_H
#define MDMCTL_CERT_H

/** "mdmctl ca SUBCOMMAND ...": argv[0] is the subcommand. Exit code. */
int mdmctl_ca(int argc, char **argv);

/** "mdmctl profile --option VALUE ...": argv[0] is the first option. */
int mdmctl_profile(int argc, char **argv);

/** Usage text of both, for mdmctl --help (a literal, to concatenate). */
#define MDMCTL_CERT_USAGE                                                      \
    "  ca init --out DIR [--ec] [--cn NAME] [--days N]\n"                      \
    "                     create a self-signed CA in DIR/ca.pem and\n"         \
    "                     DIR/ca.key (key mode 0600): RSA 3072\n"              \
    "                     (default) or EC P-384 (--ec), CN \"MDM CA\",\n"      \
    "                     3650 days; never overwrites existing files\n"        \
    "  profile --server-url URL (--topic T | --push-cert FILE)\n"              \
    "          --scep-url URL --scep-ca FILE\n"                                \
    "          [--challenge C | --challenge-file F] [--trust FILE]...\n"       \
    "          (--sign-cert FILE --sign-key FILE [--sign-chain FILE]\n"        \
    "           | --unsigned) [--out FILE] [--xml] [--OPTION VALUE]...\n"      \
    "                     write the enrollment profile (.mobileconfig)\n"      \
    "                     the modules serve; --OPTION is any profile\n"        \
    "                     option with '-' for '_' (--checkin-url,\n"           \
    "                     --organization, --access-rights, ...; see\n"         \
    "                     README); --xml writes the unsigned plist\n"

extern const char mdmctl_cert_usage[];

#endif
