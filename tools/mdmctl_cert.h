/* mdmctl's certificate tooling: "ca init" and "profile" (no Redis). */
#ifndef MDMCTL_CERT_H
#define MDMCTL_CERT_H

/** "mdmctl ca SUBCOMMAND ...": argv[0] is the subcommand. Exit code. */
int mdmctl_ca(int argc, char **argv);

/** "mdmctl profile --option VALUE ...": argv[0] is the first option. */
int mdmctl_profile(int argc, char **argv);

/** Usage text of both, for mdmctl --help. */
extern const char mdmctl_cert_usage[];

#endif
