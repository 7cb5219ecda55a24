/* mdmctl push csr | vendor-sign | check: the MDM push certificate's
 * request and checks, offline (no Redis). */
#ifndef MDMCTL_PUSH_H
#define MDMCTL_PUSH_H

/** 1 when "mdmctl push SUB" is one of these offline subcommands (not a
 * device id to push to). */
int mdmctl_push_offline(const char *sub);

/** "mdmctl push SUB ...": argv[0] is the subcommand. Exit code: 0, 1
 * refused or failed, 2 usage. */
int mdmctl_push(int argc, char **argv);

/** Usage text, for mdmctl --help (a literal, to concatenate). */
#define MDMCTL_PUSH_USAGE                                                      \
    "  push csr --out DIR [--cn NAME] [--email ADDR] [--org O]\n"              \
    "           [--country CC]\n"                                              \
    "                     a new RSA 2048 key DIR/push.key (mode 0600) and\n"   \
    "                     its CSR, DIR/push.csr (PEM) and DIR/push.csr.der\n"  \
    "                     (DER), for the MDM vendor to sign; never\n"          \
    "                     overwrites\n"                                        \
    "  push vendor-sign --csr FILE --vendor-cert FILE --vendor-key FILE\n"     \
    "           [--chain FILE]... --out FILE\n"                                \
    "                     the MDM vendor's signed push certificate request\n"  \
    "                     for Apple's Push Certificates Portal: base64 of\n"   \
    "                     the XML plist PushCertRequestCSR,\n"                 \
    "                     PushCertCertificateChain, PushCertSignature\n"       \
    "  push check CERT [--key FILE] [--warn-days N]\n"                         \
    "                     a push certificate's topic, subject, expiry and\n"   \
    "                     days left; exit 1 when it is no push\n"              \
    "                     certificate, expired, or not --key's\n"

#endif
