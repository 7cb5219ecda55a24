/* Shared by the test_msg programs (core/mdm_msg.c): sample loading and
 * message builders. */
#ifndef TEST_MSG_FIXTURE_H
#define TEST_MSG_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <plist/plist.h>

#include "mdm_msg.h"

#define UDID1   "1c111c111c111c111c111c111c111c111c111c11"
#define UDIDMAC "00000000-1111-2222-3333-444455556666"
#define UDID122 "E3568F17-92ED-450A-8904-C3BF4CB7E9A5"
#define UDIDN1  "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69"
#define UDIDN2  "66ADE930-5FDF-5EC4-8429-15640684C489"
#define TOPICN  "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9"
#define TOPICX  "com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11"
#define TOPICT  "com.apple.mgmt.test.00000000-1111-2222-3333-444455556666"
#define FFFF    "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"

/** A file of $MDM_SAMPLES, malloc'd (free()); *len its size. */
unsigned char *load(const char *rel, size_t *len);
/** mdm_msg_parse() of a sample file. */
mdm_msg_rc_t parse_file(const char *rel, mdm_expect_t expect, mdm_msg_t *m);
/** mdm_msg_parse() of a string. */
mdm_msg_rc_t parse_str(const char *s, mdm_expect_t expect, mdm_msg_t *m,
                       const char **why);
/** An XML plist dict of key, raw XML value pairs ended by NULL (free()). */
char *xmsg(const char *k, ...);
/** parse_str() of xml, which it frees. */
mdm_msg_rc_t parse_xmsg(char *xml, mdm_expect_t expect, mdm_msg_t *m);
/** m holds nothing (after mdm_msg_clear() or a failed parse). */
void assert_cleared(const mdm_msg_t *m);

#endif
