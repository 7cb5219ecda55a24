/*
 * Unit tests for core/mdm_msg.c. Real device messages come from
 * $MDM_SAMPLES (t/samples); everything else is built here.
 */
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

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static unsigned char *
load(const char *rel, size_t *len)
{
    const char *dir = getenv("MDM_SAMPLES");
    char path[1024];
    unsigned char *buf;
    long n;
    FILE *f;

    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t) n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    *len = (size_t) n;
    return buf;
}

static mdm_msg_rc_t
parse_file(const char *rel, mdm_expect_t expect, mdm_msg_t *m)
{
    size_t len;
    unsigned char *buf = load(rel, &len);
    const char *why = NULL;
    mdm_msg_rc_t rc = mdm_msg_parse(buf, len, expect, m, &why);

    if (rc != MDM_MSG_OK) {
        print_message("%s: rc %d: %s\n", rel, rc, why ? why : "?");
    }
    free(buf);
    return rc;
}

static mdm_msg_rc_t
parse_str(const char *s, mdm_expect_t expect, mdm_msg_t *m, const char **why)
{
    return mdm_msg_parse((const unsigned char *) s, strlen(s), expect, m, why);
}

/* A message from key, value-element pairs; ends with NULL. malloc'd. */
static char *
xmsg(const char *k, ...)
{
    va_list ap;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    const char *v;

    assert_non_null(s);
    len += (size_t) snprintf(s, cap,
                             "<?xml version=\"1.0\"?>\n<plist "
                             "version=\"1.0\"><dict>");
    va_start(ap, k);
    for (; k != NULL; k = va_arg(ap, const char *)) {
        v = va_arg(ap, const char *);
        while (len + strlen(k) + strlen(v) + 64 > cap) {
            cap *= 2;
            s = realloc(s, cap);
            assert_non_null(s);
        }
        len += (size_t) snprintf(s + len, cap - len, "<key>%s</key>%s", k, v);
    }
    va_end(ap);
    snprintf(s + len, cap - len, "</dict></plist>\n");
    return s;
}

static mdm_msg_rc_t
parse_xmsg(char *xml, mdm_expect_t expect, mdm_msg_t *m)
{
    const char *why = NULL;
    mdm_msg_rc_t rc = parse_str(xml, expect, m, &why);

    free(xml);
    return rc;
}

static void
assert_cleared(const mdm_msg_t *m)
{
    static const mdm_msg_t zero;

    assert_memory_equal(m, &zero, sizeof(zero));
}

/* ------------------------------------------------------------------ */
/* Real check-ins                                                     */

static void
test_authenticate_samples(void **state)
{
    static const struct {
        const char *file, *udid, *topic, *os, *serial;
    } t[] = {
        {"commandment/Authenticate/10.11.x.xml", UDIDMAC, TOPICT, "10.11.6",
         "C00000000004"},
        {"commandment/Authenticate/10.12.2.xml", UDID122,
         "com.apple.mgmt.commandment.dev", "10.12.2", "000000000000"},
        {"commandment/Authenticate/IOS-11.3.1.xml", UDID1, TOPICX, "11.3.1",
         "XXXXXXXXXXXX"},
        {"commandment/Authenticate/IOS-9.x.xml",
         "1111111111111111111111111111111111111111",
         "io.micromdm.topic.00000000-1111-2222-3333-444455556666", "9.3.2",
         "XXXXXXXXXXXX"},
        {"commandment/Authenticate/iOS-11.3.1-cell.xml",
         "1111111111111111111111111111111111111111", TOPICX, "11.3.1",
         "XXXXXXXXXXXX"},
        {"nanomdm/mdm_testdata_Authenticate.1.plist", UDIDN1, TOPICN, "9.3.5",
         "F5JM992LF193"},
        {"nanomdm/mdm_testdata_Authenticate.2.plist", UDIDN2, TOPICN, "10.12.6",
         "C02MT66KFLHH"},
    };
    size_t i;
    mdm_msg_t m;

    (void) state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(parse_file(t[i].file, MDM_EXPECT_CHECKIN, &m),
                         MDM_MSG_OK);
        assert_int_equal(m.type, MDM_MSG_AUTHENTICATE);
        assert_string_equal(m.message_type, "Authenticate");
        assert_int_equal(m.status, MDM_STATUS_NONE);
        assert_null(m.status_str);
        assert_string_equal(m.udid, t[i].udid);
        assert_string_equal(m.topic, t[i].topic);
        assert_string_equal(m.os_version, t[i].os);
        assert_string_equal(m.serial_number, t[i].serial);
        assert_int_equal(m.enr_type, MDM_ENR_DEVICE);
        assert_string_equal(m.id, t[i].udid);
        assert_string_equal(m.device_id, t[i].udid);
        assert_null(m.token.ptr);
        assert_int_equal(m.awaiting_configuration, -1);
        assert_int_equal(m.not_on_console, -1);
        mdm_msg_clear(&m);
        assert_cleared(&m);
    }

    /* macOS extras, and the undocumented Challenge key is ignored */
    assert_int_equal(parse_file("nanomdm/mdm_testdata_Authenticate.2.plist",
                                MDM_EXPECT_ANY, &m),
                     MDM_MSG_OK);
    assert_string_equal(m.device_name, "Fruit");
    assert_string_equal(m.model, "iMac14,2");
    assert_string_equal(m.model_name, "iMac");
    assert_string_equal(m.product_name, "iMac14,2");
    assert_string_equal(m.build_version, "16G2136");
    mdm_msg_clear(&m);

    assert_int_equal(parse_file("commandment/Authenticate/iOS-11.3.1-cell.xml",
                                MDM_EXPECT_ANY, &m),
                     MDM_MSG_OK);
    assert_string_equal(m.imei, "11 111111 111111 1");
    assert_string_equal(m.meid, "1111111111111");
    assert_string_equal(m.product_name, "iPhone7,2");
    mdm_msg_clear(&m);
}

static void
test_token_update_samples(void **state)
{
    static const struct {
        const char *file, *udid, *topic, *magic;
        size_t token_len;     /* 0: redacted in the sample, just present */
        size_t unlock_len;    /* 0: absent */
        const char *user_id;  /* user channel */
        const char *short_nm; /* user channel */
        int awaiting;
        int not_on_console;
    } t[] = {
        {"commandment/TokenUpdate/10.11.x.plist", UDIDMAC, TOPICT, UDIDMAC, 5,
         0, NULL, NULL, 0, -1},
        {"commandment/TokenUpdate/10.11.x-user.plist", UDIDMAC, TOPICT, UDIDMAC,
         3, 0, UDIDMAC, "admin", -1, 0},
        {"commandment/TokenUpdate/10.12.2.xml", UDID122,
         "com.apple.mgmt.commandment.dev",
         "B81B1FEC-09C6-4EC2-871C-E521EC971B38", 37, 0, NULL, NULL, 0, -1},
        {"commandment/TokenUpdate/10.12.2-user.xml", UDID122,
         "com.apple.mgmt.commandment.dev",
         "B81B1FEC-09C6-4EC2-871C-E521EC971B38", 37, 0,
         "A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883", "cjoe", -1, 0},
        {"commandment/TokenUpdate/iOS-11.3.1.xml", UDID1, TOPICX,
         "AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA", 0, 0, NULL, NULL, 0, -1},
        {"nanomdm/mdm_testdata_TokenUpdate.1.plist", UDIDN1, TOPICN,
         "CEFDF0BD-E342-4A27-8742-E930EA116B0A", 32, 1288, NULL, NULL, 0, -1},
        {"nanomdm/mdm_testdata_TokenUpdate.2.plist", UDIDN2, TOPICN,
         "888CEB39-BFFA-40F6-89FA-B60752EB63C2", 32, 0, NULL, NULL, 0, -1},
        {"synthetic/checkin-body.TokenUpdate.plist", UDIDN2, TOPICN,
         "888CEB39-BFFA-40F6-89FA-B60752EB63C2", 32, 0, NULL, NULL, 0, -1},
    };
    size_t i;
    mdm_msg_t m;
    char id[256];

    (void) state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(parse_file(t[i].file, MDM_EXPECT_CHECKIN, &m),
                         MDM_MSG_OK);
        assert_int_equal(m.type, MDM_MSG_TOKEN_UPDATE);
        assert_string_equal(m.udid, t[i].udid);
        assert_string_equal(m.topic, t[i].topic);
        assert_string_equal(m.push_magic, t[i].magic);
        assert_non_null(m.token.ptr);
        if (t[i].token_len != 0) {
            assert_int_equal(m.token.len, t[i].token_len);
        }
        if (t[i].unlock_len != 0) {
            assert_int_equal(m.unlock_token.len, t[i].unlock_len);
        }
        assert_int_equal(m.awaiting_configuration, t[i].awaiting);
        assert_int_equal(m.not_on_console, t[i].not_on_console);
        assert_string_equal(m.device_id, t[i].udid);
        if (t[i].user_id != NULL) {
            snprintf(id, sizeof(id), "%s:%s", t[i].udid, t[i].user_id);
            assert_int_equal(m.enr_type, MDM_ENR_USER);
            assert_string_equal(m.user_id, t[i].user_id);
            assert_string_equal(m.user_short_name, t[i].short_nm);
            assert_string_equal(m.id, id);
        } else {
            assert_int_equal(m.enr_type, MDM_ENR_DEVICE);
            assert_null(m.user_id);
            assert_string_equal(m.id, t[i].udid);
        }
        mdm_msg_clear(&m);
    }

    /* the bytes themselves, not only their count */
    assert_int_equal(parse_file("commandment/TokenUpdate/10.11.x.plist",
                                MDM_EXPECT_CHECKIN, &m),
                     MDM_MSG_OK);
    assert_memory_equal(m.token.ptr, "apple", 5);
    mdm_msg_clear(&m);
    assert_int_equal(parse_file("nanomdm/mdm_testdata_TokenUpdate.1.plist",
                                MDM_EXPECT_CHECKIN, &m),
                     MDM_MSG_OK);
    assert_memory_equal(m.token.ptr, "\x47\xe8\xee\xc0\x62\xc2\xf7\x29", 8);
    assert_memory_equal(m.unlock_token.ptr, "DATA", 4);
    mdm_msg_clear(&m);
}

static void
test_checkout_samples(void **state)
{
    mdm_msg_t m;

    (void) state;
    assert_int_equal(
        parse_file("commandment/CheckOut/10.11.x.xml", MDM_EXPECT_ANY, &m),
        MDM_MSG_OK);
    assert_int_equal(m.type, MDM_MSG_CHECK_OUT);
    assert_string_equal(m.udid, UDIDMAC);
    assert_string_equal(m.topic, TOPICT);
    assert_string_equal(m.id, UDIDMAC);
    mdm_msg_clear(&m);

    assert_int_equal(parse_file("commandment/CheckOut/iOS-11.3.1.xml",
                                MDM_EXPECT_CHECKIN, &m),
                     MDM_MSG_OK);
    assert_int_equal(m.type, MDM_MSG_CHECK_OUT);
    assert_string_equal(m.udid, UDID1);
    assert_string_equal(m.topic, TOPICX);
    assert_int_equal(m.enr_type, MDM_ENR_DEVICE);
    mdm_msg_clear(&m);
}

/* ------------------------------------------------------------------ */
/* Real reports                                                       */

static void
test_report_samples(void **state)
{
    static const struct {
        const char *file, *udid, *uuid;
        mdm_status_t status;
        const char *request_type;
        size_t chain;
        int64_t code;
        const char *domain;
    } t[] = {
        {"commandment/DeviceInformation/10.11.x.xml", UDIDMAC, UDIDMAC,
         MDM_STATUS_ACKNOWLEDGED, "DeviceInformation", 0, 0, NULL},
        {"commandment/DeviceInformation/iOS-11.3.1.xml", UDID1,
         "3ab89975-490b-4f33-80c7-0982069272ba", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/DeviceInformation/macOS-10.13.1.xml", UDIDMAC,
         "be926f7e-9cd2-465a-ba2b-b573dc4eaa7a", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"nanomdm/mdm_testdata_DeviceInformation.1.plist", UDIDN2,
         "76eda240-5488-4989-8339-f2ae160113c4", MDM_STATUS_ACKNOWLEDGED,
         "DeviceInformation", 0, 0, NULL},
        {"commandment/SecurityInfo/10.11.x.xml", UDIDMAC, UDIDMAC,
         MDM_STATUS_ACKNOWLEDGED, "SecurityInfo", 0, 0, NULL},
        {"commandment/SecurityInfo/IOS-9.x.xml",
         "1111111111111111111111111111111111111111", UDIDMAC,
         MDM_STATUS_ACKNOWLEDGED, NULL, 0, 0, NULL},
        {"commandment/SecurityInfo/iOS-11.3.1.xml", UDID1,
         "f1048316-6628-4b32-b2f2-708d7f4d7105", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/SecurityInfo/macOS-10.13.1.xml", UDIDMAC,
         "bf88d054-bd86-480d-b406-a1bc74a403c0", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/ProfileList/10.11.x.xml", UDIDMAC, UDIDMAC,
         MDM_STATUS_ACKNOWLEDGED, "ProfileList", 0, 0, NULL},
        {"commandment/ProfileList/iOS-11.3.1.xml", UDID1,
         "2d1d3845-3e06-4687-a357-b343ebb17888", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/CertificateList/10.11.x.xml", UDIDMAC, UDIDMAC,
         MDM_STATUS_ACKNOWLEDGED, "CertificateList", 0, 0, NULL},
        {"commandment/CertificateList/iOS-11.3.1.xml", UDID1,
         "506315e2-386a-44eb-9f46-e402afce7e80", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/InstalledApplicationList/10.11.x.xml", UDIDMAC, UDIDMAC,
         MDM_STATUS_ACKNOWLEDGED, "InstalledApplicationList", 0, 0, NULL},
        {"commandment/InstalledApplicationList/iOS-11.3.1.xml", UDID1,
         "368b6b82-f89c-4af7-8a02-ed72af86116c", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/InstalledApplicationList/iOS-12.1.xml", UDID1,
         "ca851cf1-e85b-4fed-bf0a-dd7a4e4859b2", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/ManagedApplicationList/iOS-11.3.1-Failed.xml", UDID1,
         "b3f87776-66a4-40f4-a194-8b451a2eacb1", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/ManagedApplicationList/iOS-12.1-Failed.xml", UDID1,
         "7fc66d05-4bdb-41e4-9814-5a4c21e74e16", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/ManagedApplicationList/iOS-12.1-Installing.xml", UDID1,
         "cfaa6f63-6ea9-493c-ab2e-a534937c5eda", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/ManagedApplicationList/iOS-12.1-Managed.xml", UDID1,
         "0a40830d-1cf9-4a00-a153-d8294e576c3f", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/ManagedApplicationList/iOS-12.1-RejectedPrompting.xml",
         UDID1, "2dce0324-3a9c-493d-bd7a-2d2a2985a67e", MDM_STATUS_ACKNOWLEDGED,
         NULL, 0, 0, NULL},
        {"commandment/AvailableOSUpdates/10.12.5.xml", UDIDMAC, UDIDMAC,
         MDM_STATUS_ACKNOWLEDGED, "AvailableOSUpdates", 0, 0, NULL},
        {"commandment/AvailableOSUpdates/iOS-11.3.1.xml", UDID1,
         "8fb53ef6-5fcd-46c2-bf05-ee502406f240", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/AvailableOSUpdates/macOS-10.13.1.xml", UDIDMAC,
         "a6121a90-4100-4928-93d8-6645722bfda7", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/DeviceLock/iOS-11.3.1.xml", UDID1,
         "b6c8627f-bf4a-4ef4-8f40-d8673cd568c9", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/InstallApplication/iOS-12.1-prompting.xml", UDID1,
         "7a9df3db-d661-4c1c-aa0e-56d69c8718a5", MDM_STATUS_ACKNOWLEDGED, NULL,
         0, 0, NULL},
        {"commandment/InstallApplication/iOS-11.3.1-alreadyprompting.xml",
         UDID1, "94ee37e2-3e03-4bdf-ad9c-a81ccc9d78e9", MDM_STATUS_ERROR, NULL,
         1, 1407, "DeviceManagement.error"},
        {"commandment/Errors/10.12.5-invalid-command.xml", UDIDMAC,
         "93a81e2a-8fbe-4e4b-b6e5-ee9148893f33", MDM_STATUS_ERROR,
         "RemoveProfile", 1, 97, "MDMClientError"},
        {"commandment/Errors/10.13.6-invalid-command.xml",
         "2F6DE437-7C14-5735-85B4-DC6B365BCAF1",
         "bac6348e-3291-4523-a354-037ec379b738", MDM_STATUS_ERROR, NULL, 1,
         12021, "MCMDMErrorDomain"},
        {"commandment/Errors/error_invalid_request_type.plist", UDIDMAC,
         UDIDMAC, MDM_STATUS_ERROR, NULL, 1, 12021, "MCMDMErrorDomain"},
        {"commandment/Errors/iOS-11.3.1-AvailableOSUpdatesFailure.xml", UDID1,
         "93289d88-c8da-4732-9a7e-33dd51851b6e", MDM_STATUS_ERROR, NULL, 2,
         2213, "DeviceManagement.error"},
        {"commandment/Errors/iOS-11.3.1-RemoveProfile-Unmanaged.xml", UDID1,
         "b2da2591-a2e5-45e5-8dd8-0ffb050d8407", MDM_STATUS_ERROR, NULL, 1,
         12013, "MCMDMErrorDomain"},
        {"commandment/Errors/iOS-11.3.1-CommandFormatError.xml", UDID1,
         "52aab5d2-6a61-4fe8-b685-44f8b56972d0",
         MDM_STATUS_COMMAND_FORMAT_ERROR, NULL, 0, 0, NULL},
        {"commandment/NotNow/iOS-11.3.1.xml", UDID1,
         "bb5d7813-e7c3-4279-b954-4b678925de5f", MDM_STATUS_NOT_NOW, NULL, 0, 0,
         NULL},
    };
    size_t i;
    mdm_msg_t m;

    (void) state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(parse_file(t[i].file, MDM_EXPECT_REPORT, &m),
                         MDM_MSG_OK);
        assert_int_equal(m.type, MDM_MSG_REPORT);
        assert_null(m.message_type);
        assert_int_equal(m.status, t[i].status);
        assert_string_equal(m.status_str, mdm_status_name(t[i].status));
        assert_string_equal(m.udid, t[i].udid);
        assert_string_equal(m.command_uuid, t[i].uuid);
        if (t[i].request_type != NULL) {
            assert_string_equal(m.request_type, t[i].request_type);
        } else {
            assert_null(m.request_type);
        }
        assert_int_equal(m.error_chain_len, t[i].chain);
        assert_int_equal(m.first_error_code, t[i].code);
        if (t[i].domain != NULL) {
            assert_string_equal(m.first_error_domain, t[i].domain);
        } else {
            assert_null(m.first_error_domain);
        }
        assert_int_equal(m.enr_type, MDM_ENR_DEVICE);
        assert_string_equal(m.id, t[i].udid);
        assert_string_equal(m.device_id, t[i].udid);
        mdm_msg_clear(&m);

        /* the same bodies on a combined endpoint */
        assert_int_equal(parse_file(t[i].file, MDM_EXPECT_ANY, &m), MDM_MSG_OK);
        assert_int_equal(m.type, MDM_MSG_REPORT);
        mdm_msg_clear(&m);
    }
}

/* ------------------------------------------------------------------ */
/* Enrollment ids (PROTOCOL.md section 2)                             */

static void
test_enrollment_table(void **state)
{
    mdm_msg_t m;
    const char *why;

    (void) state;

    /* UDID, no UserID: device */
    assert_int_equal(parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                                     "<string>U1</string>", NULL),
                                MDM_EXPECT_REPORT, &m),
                     MDM_MSG_OK);
    assert_int_equal(m.enr_type, MDM_ENR_DEVICE);
    assert_string_equal(m.id, "U1");
    assert_string_equal(m.device_id, "U1");
    mdm_msg_clear(&m);

    /* UDID + the all-F UserID: Shared iPad, keyed by the short name */
    assert_int_equal(
        parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                        "<string>U1</string>", "UserID",
                        "<string>" FFFF "</string>", "UserShortName",
                        "<string>appleid@example.com</string>", "UserLongName",
                        "<string>Jane Appleseed</string>", NULL),
                   MDM_EXPECT_REPORT, &m),
        MDM_MSG_OK);
    assert_int_equal(m.enr_type, MDM_ENR_SHARED_IPAD);
    assert_string_equal(m.id, "U1:appleid@example.com");
    assert_string_equal(m.device_id, "U1");
    assert_string_equal(m.user_long_name, "Jane Appleseed");
    mdm_msg_clear(&m);

    /* ... and without UserShortName there is nothing to key it on */
    why = NULL;
    assert_int_equal(
        parse_str("<plist><dict><key>Status</key><string>Idle</string>"
                  "<key>UDID</key><string>U1</string><key>UserID</key>"
                  "<string>" FFFF "</string></dict></plist>",
                  MDM_EXPECT_REPORT, &m, &why),
        MDM_MSG_ERR_ID);
    assert_non_null(why);
    assert_cleared(&m);

    /* UDID + other UserID: macOS user channel */
    assert_int_equal(
        parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                        "<string>U1</string>", "UserID",
                        "<string>A522C2FB-D0BA-487E</string>", "UserShortName",
                        "<string>cjoe</string>", NULL),
                   MDM_EXPECT_REPORT, &m),
        MDM_MSG_OK);
    assert_int_equal(m.enr_type, MDM_ENR_USER);
    assert_string_equal(m.id, "U1:A522C2FB-D0BA-487E");
    assert_string_equal(m.device_id, "U1");
    mdm_msg_clear(&m);

    /* lower-case all-f is not the Shared iPad constant */
    assert_int_equal(
        parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                        "<string>U1</string>", "UserID",
                        "<string>ffffffff-ffff-ffff-ffff-ffffffffffff</string>",
                        NULL),
                   MDM_EXPECT_REPORT, &m),
        MDM_MSG_OK);
    assert_int_equal(m.enr_type, MDM_ENR_USER);
    mdm_msg_clear(&m);

    /* EnrollmentID alone: User Enrollment device channel */
    assert_int_equal(
        parse_xmsg(xmsg("Status", "<string>Idle</string>", "EnrollmentID",
                        "<string>E1</string>", NULL),
                   MDM_EXPECT_REPORT, &m),
        MDM_MSG_OK);
    assert_int_equal(m.enr_type, MDM_ENR_USER_ENROLLMENT_DEVICE);
    assert_string_equal(m.id, "E1");
    assert_string_equal(m.device_id, "E1");
    mdm_msg_clear(&m);

    /* EnrollmentID + EnrollmentUserID: User Enrollment user channel */
    assert_int_equal(
        parse_xmsg(xmsg("Status", "<string>Idle</string>", "EnrollmentID",
                        "<string>E1</string>", "EnrollmentUserID",
                        "<string>EU1</string>", NULL),
                   MDM_EXPECT_REPORT, &m),
        MDM_MSG_OK);
    assert_int_equal(m.enr_type, MDM_ENR_USER_ENROLLMENT);
    assert_string_equal(m.id, "E1:EU1");
    assert_string_equal(m.device_id, "E1");
    mdm_msg_clear(&m);

    /* the table is checked in order: UDID wins over EnrollmentID */
    assert_int_equal(parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                                     "<string>U1</string>", "EnrollmentID",
                                     "<string>E1</string>", "EnrollmentUserID",
                                     "<string>EU1</string>", NULL),
                                MDM_EXPECT_REPORT, &m),
                     MDM_MSG_OK);
    assert_int_equal(m.enr_type, MDM_ENR_DEVICE);
    assert_string_equal(m.id, "U1");
    mdm_msg_clear(&m);

    /* no identifier at all */
    assert_int_equal(
        parse_xmsg(xmsg("Status", "<string>Idle</string>", "UserID",
                        "<string>X</string>", "EnrollmentUserID",
                        "<string>EU1</string>", NULL),
                   MDM_EXPECT_REPORT, &m),
        MDM_MSG_ERR_ID);
    assert_cleared(&m);
}

static void
test_enrollment_bad_ids(void **state)
{
    static const struct {
        const char *key, *value;
    } bad[] = {
        {"UDID", "U{1}"},
        {"UDID", "U}1"},
        {"UDID", "U 1"},
        {"UDID", ""},
        {"UDID", "caf\xc3\xa9"},
        {"UDID", "a\tb"},
        {"UDID", "A:B"}, /* would read as user B of device A */
        {"EnrollmentID", "E:1"},
        {"UserID", "A B"},
        {"UserID", "{x"},
        {"UserShortName", "jane doe"}, /* only used on Shared iPad */
        {"EnrollmentID", "E {1}"},
        {"EnrollmentUserID", "x}"},
        {"EnrollmentUserID", "x y"},
    };
    char val[64], long_id[300];
    size_t i;
    mdm_msg_t m;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *x;

        snprintf(val, sizeof(val), "<string>%s</string>", bad[i].value);
        if (strcmp(bad[i].key, "UDID") == 0) {
            x = xmsg("Status", "<string>Idle</string>", "UDID", val, NULL);
        } else if (strcmp(bad[i].key, "UserID") == 0) {
            x = xmsg("Status", "<string>Idle</string>", "UDID",
                     "<string>U1</string>", "UserID", val, NULL);
        } else if (strcmp(bad[i].key, "UserShortName") == 0) {
            x = xmsg("Status", "<string>Idle</string>", "UDID",
                     "<string>U1</string>", "UserID",
                     "<string>" FFFF "</string>", "UserShortName", val, NULL);
        } else if (strcmp(bad[i].key, "EnrollmentID") == 0) {
            x = xmsg("Status", "<string>Idle</string>", "EnrollmentID", val,
                     NULL);
        } else {
            x = xmsg("Status", "<string>Idle</string>", "EnrollmentID",
                     "<string>E1</string>", "EnrollmentUserID", val, NULL);
        }
        if (parse_xmsg(x, MDM_EXPECT_REPORT, &m) != MDM_MSG_ERR_ID) {
            fail_msg("%s=\"%s\" accepted", bad[i].key, bad[i].value);
        }
        assert_cleared(&m);
    }

    /* 255 bytes is fine, 256 is not, nor a 255-byte UDID with a user */
    memset(long_id, 'a', 255);
    long_id[255] = '\0';
    {
        char s[400];

        snprintf(s, sizeof(s), "<string>%s</string>", long_id);
        assert_int_equal(
            parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID", s, NULL),
                       MDM_EXPECT_REPORT, &m),
            MDM_MSG_OK);
        assert_int_equal(strlen(m.id), 255);
        mdm_msg_clear(&m);
        assert_int_equal(
            parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID", s,
                            "UserID", "<string>u</string>", NULL),
                       MDM_EXPECT_REPORT, &m),
            MDM_MSG_ERR_ID);
        long_id[255] = 'a';
        long_id[256] = '\0';
        snprintf(s, sizeof(s), "<string>%s</string>", long_id);
        assert_int_equal(
            parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID", s, NULL),
                       MDM_EXPECT_REPORT, &m),
            MDM_MSG_ERR_ID);
    }
}

static void
test_id_valid(void **state)
{
    (void) state;
    assert_true(mdm_id_valid("abc", 3));
    assert_true(mdm_id_valid("a:b@example.com", 15));
    assert_true(mdm_id_valid("!~", 2));
    assert_false(mdm_id_valid(NULL, 0));
    assert_false(mdm_id_valid("", 0));
    assert_false(mdm_id_valid("a b", 3));
    assert_false(mdm_id_valid("a{b", 3));
    assert_false(mdm_id_valid("a}b", 3));
    assert_false(mdm_id_valid("a\x7f", 2));
    assert_false(mdm_id_valid("a\nb", 3));
    assert_false(mdm_id_valid("a\0b", 3));
    {
        char s[257];

        memset(s, 'x', sizeof(s));
        assert_true(mdm_id_valid(s, 255));
        assert_false(mdm_id_valid(s, 256));
    }
}

/* ------------------------------------------------------------------ */
/* Check-in types and their required keys                             */

typedef struct {
    const char *type;
    mdm_msg_type_t expect;
    const char *keys[4]; /* required besides MessageType and the id */
} req_row_t;

static const req_row_t req_rows[] = {
    {"Authenticate", MDM_MSG_AUTHENTICATE, {"Topic"}},
    {"TokenUpdate", MDM_MSG_TOKEN_UPDATE, {"Topic", "Token", "PushMagic"}},
    {"CheckOut", MDM_MSG_CHECK_OUT, {"Topic"}},
    {"UserAuthenticate", MDM_MSG_USER_AUTHENTICATE, {"UserID"}},
    {"SetBootstrapToken", MDM_MSG_SET_BOOTSTRAP_TOKEN, {NULL}},
    {"GetBootstrapToken", MDM_MSG_GET_BOOTSTRAP_TOKEN, {NULL}},
    {"DeclarativeManagement", MDM_MSG_DECLARATIVE_MANAGEMENT, {"Endpoint"}},
    {"GetToken", MDM_MSG_GET_TOKEN, {"TokenServiceType"}},
    {"ReturnToService", MDM_MSG_RETURN_TO_SERVICE, {NULL}},
};

static const char *
value_for(const char *key)
{
    if (strcmp(key, "Token") == 0) {
        return "<data>YXBwbGU=</data>";
    }
    return "<string>v</string>";
}

/* The check-in row with every required key except skip (may be NULL). */
static char *
req_msg(const req_row_t *r, const char *skip, int with_udid)
{
    const char *k[4] = {"k0", "k1", "k2", "k3"},
               *v[4] = {"<string>-</string>", "<string>-</string>",
                        "<string>-</string>", "<string>-</string>"};
    char mt[128];
    size_t i;

    for (i = 0; i < 3 && r->keys[i] != NULL; i++) {
        if (skip != NULL && strcmp(r->keys[i], skip) == 0) {
            continue;
        }
        k[i] = r->keys[i];
        v[i] = value_for(r->keys[i]);
    }
    snprintf(mt, sizeof(mt), "<string>%s</string>", r->type);
    return xmsg("MessageType", mt, with_udid ? "UDID" : "k3",
                "<string>U1</string>", k[0], v[0], k[1], v[1], k[2], v[2],
                NULL);
}

static void
test_checkin_types_and_required(void **state)
{
    size_t i, j;
    mdm_msg_t m;

    (void) state;
    for (i = 0; i < sizeof(req_rows) / sizeof(req_rows[0]); i++) {
        const req_row_t *r = &req_rows[i];

        assert_int_equal(parse_xmsg(req_msg(r, NULL, 1), MDM_EXPECT_ANY, &m),
                         MDM_MSG_OK);
        assert_int_equal(m.type, r->expect);
        assert_string_equal(m.message_type, r->type);
        assert_string_equal(mdm_msg_type_name(m.type), r->type);
        mdm_msg_clear(&m);

        for (j = 0; j < 3 && r->keys[j] != NULL; j++) {
            if (parse_xmsg(req_msg(r, r->keys[j], 1), MDM_EXPECT_CHECKIN, &m) !=
                MDM_MSG_ERR_MISSING) {
                fail_msg("%s without %s accepted", r->type, r->keys[j]);
            }
            assert_cleared(&m);
        }

        /* every check-in needs an enrollment identifier */
        assert_int_equal(
            parse_xmsg(req_msg(r, NULL, 0), MDM_EXPECT_CHECKIN, &m),
            MDM_MSG_ERR_ID);
    }
}

static void
test_checkin_optional_keys(void **state)
{
    mdm_msg_t m;

    (void) state;
    /* BootstrapToken: absent and zero-length are different things */
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>SetBootstrapToken</string>",
                        "UDID", "<string>U1</string>", "BootstrapToken",
                        "<data></data>", "AwaitingConfiguration", "<true/>",
                        NULL),
                   MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_OK);
    assert_non_null(m.bootstrap_token.ptr);
    assert_int_equal(m.bootstrap_token.len, 0);
    assert_int_equal(m.awaiting_configuration, 1);
    mdm_msg_clear(&m);
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>SetBootstrapToken</string>",
                        "UDID", "<string>U1</string>", "BootstrapToken",
                        "<data>AAEC</data>", NULL),
                   MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_OK);
    assert_int_equal(m.bootstrap_token.len, 3);
    assert_memory_equal(m.bootstrap_token.ptr, "\0\1\2", 3);
    mdm_msg_clear(&m);
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>SetBootstrapToken</string>",
                        "UDID", "<string>U1</string>", NULL),
                   MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_OK);
    assert_null(m.bootstrap_token.ptr);
    assert_int_equal(m.awaiting_configuration, -1);
    mdm_msg_clear(&m);

    /* DigestResponse: data or string */
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>UserAuthenticate</string>",
                        "UDID", "<string>U1</string>", "UserID",
                        "<string>G1</string>", "DigestResponse",
                        "<data>YXBwbGU=</data>", NULL),
                   MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_OK);
    assert_true(m.has_digest_response);
    assert_int_equal(m.digest_response.len, 5);
    assert_memory_equal(m.digest_response.ptr, "apple", 5);
    assert_int_equal(m.enr_type, MDM_ENR_USER);
    mdm_msg_clear(&m);
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>UserAuthenticate</string>",
                        "UDID", "<string>U1</string>", "UserID",
                        "<string>G1</string>", "DigestResponse",
                        "<string>username=\"a\"</string>", NULL),
                   MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_OK);
    assert_true(m.has_digest_response);
    assert_int_equal(m.digest_response.len, 12);
    assert_memory_equal(m.digest_response.ptr, "username=\"a\"", 12);
    mdm_msg_clear(&m);
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>UserAuthenticate</string>",
                        "UDID", "<string>U1</string>", "UserID",
                        "<string>G1</string>", NULL),
                   MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_OK);
    assert_false(m.has_digest_response);
    assert_null(m.digest_response.ptr);
    mdm_msg_clear(&m);

    /* DeclarativeManagement with Data; GetToken; unknown keys ignored */
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>DeclarativeManagement</string>",
                        "EnrollmentID", "<string>E1</string>", "Endpoint",
                        "<string>status</string>", "Data", "<data>e30=</data>",
                        "Whatever",
                        "<dict><key>x</key><integer>1</integer></dict>",
                        "Challenge", "<data>AAAA</data>", NULL),
                   MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_OK);
    assert_string_equal(m.endpoint, "status");
    assert_int_equal(m.ddm_data.len, 2);
    assert_memory_equal(m.ddm_data.ptr, "{}", 2);
    assert_int_equal(m.enr_type, MDM_ENR_USER_ENROLLMENT_DEVICE);
    mdm_msg_clear(&m);
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>GetToken</string>", "UDID",
                        "<string>U1</string>", "TokenServiceType",
                        "<string>com.apple.maid</string>", "TokenParameters",
                        "<dict/>", NULL),
                   MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_OK);
    assert_string_equal(m.token_service_type, "com.apple.maid");
    mdm_msg_clear(&m);
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                           */

static void
test_dispatch(void **state)
{
    mdm_msg_t m;
    const char *why;

    (void) state;
    why = NULL;
    assert_int_equal(parse_str("<plist><dict><key>MessageType</key>"
                               "<string>Authenticat</string><key>UDID</key>"
                               "<string>U1</string><key>Topic</key>"
                               "<string>t</string></dict></plist>",
                               MDM_EXPECT_ANY, &m, &why),
                     MDM_MSG_ERR_UNKNOWN_TYPE);
    assert_non_null(why);
    assert_cleared(&m);

    assert_int_equal(parse_xmsg(xmsg("Status", "<string>Acknowledge</string>",
                                     "UDID", "<string>U1</string>",
                                     "CommandUUID", "<string>c</string>", NULL),
                                MDM_EXPECT_REPORT, &m),
                     MDM_MSG_ERR_UNKNOWN_STATUS);
    assert_cleared(&m);

    /* Idle needs no CommandUUID; everything else does */
    assert_int_equal(parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                                     "<string>U1</string>", NULL),
                                MDM_EXPECT_REPORT, &m),
                     MDM_MSG_OK);
    assert_int_equal(m.status, MDM_STATUS_IDLE);
    assert_null(m.command_uuid);
    mdm_msg_clear(&m);
    {
        static const char *const st[] = {"Acknowledged", "Error",
                                         "CommandFormatError", "NotNow"};
        char v[64];
        size_t i;

        for (i = 0; i < 4; i++) {
            snprintf(v, sizeof(v), "<string>%s</string>", st[i]);
            if (parse_xmsg(
                    xmsg("Status", v, "UDID", "<string>U1</string>", NULL),
                    MDM_EXPECT_REPORT, &m) != MDM_MSG_ERR_MISSING) {
                fail_msg("%s without CommandUUID accepted", st[i]);
            }
            assert_int_equal(
                parse_xmsg(xmsg("Status", v, "UDID", "<string>U1</string>",
                                "CommandUUID", "<string>c1</string>", NULL),
                           MDM_EXPECT_REPORT, &m),
                MDM_MSG_OK);
            assert_string_equal(mdm_status_name(m.status), st[i]);
            mdm_msg_clear(&m);
        }
    }

    /* a report on a check-in-only endpoint, and the reverse */
    assert_int_equal(
        parse_file("commandment/NotNow/iOS-11.3.1.xml", MDM_EXPECT_CHECKIN, &m),
        MDM_MSG_ERR_MISSING);
    assert_cleared(&m);
    assert_int_equal(parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                                     "<string>U1</string>", NULL),
                                MDM_EXPECT_CHECKIN, &m),
                     MDM_MSG_ERR_MISSING);
    assert_int_equal(
        parse_file("commandment/CheckOut/10.11.x.xml", MDM_EXPECT_REPORT, &m),
        MDM_MSG_ERR_MISSING);
    assert_cleared(&m);

    /* neither key */
    assert_int_equal(parse_xmsg(xmsg("UDID", "<string>U1</string>", NULL),
                                MDM_EXPECT_ANY, &m),
                     MDM_MSG_ERR_MISSING);

    /* both keys: MessageType wins on ANY, Status on REPORT */
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>CheckOut</string>", "Status",
                        "<string>Idle</string>", "Topic", "<string>t</string>",
                        "UDID", "<string>U1</string>", NULL),
                   MDM_EXPECT_ANY, &m),
        MDM_MSG_OK);
    assert_int_equal(m.type, MDM_MSG_CHECK_OUT);
    assert_null(m.status_str);
    assert_int_equal(m.status, MDM_STATUS_NONE);
    mdm_msg_clear(&m);
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>CheckOut</string>", "Status",
                        "<string>Idle</string>", "Topic", "<string>t</string>",
                        "UDID", "<string>U1</string>", NULL),
                   MDM_EXPECT_REPORT, &m),
        MDM_MSG_OK);
    assert_int_equal(m.type, MDM_MSG_REPORT);
    assert_null(m.message_type);
    mdm_msg_clear(&m);
}

/* ------------------------------------------------------------------ */
/* Types                                                              */

static const char *const all_keys[] = {
    "UDID",
    "UserID",
    "UserShortName",
    "UserLongName",
    "EnrollmentID",
    "EnrollmentUserID",
    "Topic",
    "PushMagic",
    "SerialNumber",
    "Model",
    "ModelName",
    "ProductName",
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "IMEI",
    "MEID",
    "Endpoint",
    "TokenServiceType",
    "CommandUUID",
    "RequestType",
    "MessageType",
    "Status",
    "Token",
    "UnlockToken",
    "BootstrapToken",
    "Data",
    "DigestResponse",
    "AwaitingConfiguration",
    "NotOnConsole",
    "ErrorChain",
};

static void
test_wrong_type_every_key(void **state)
{
    static const char *const bad_values[] = {
        "<integer>1</integer>",
        "<array><integer>2</integer></array>",
        "<dict/>",
        "<real>1.5</real>",
    };
    static const char *const base[][2] = {
        {"MessageType", "<string>TokenUpdate</string>"},
        {"UDID", "<string>U1</string>"},
        {"Topic", "<string>t</string>"},
        {"Token", "<data>YXBwbGU=</data>"},
        {"PushMagic", "<string>pm</string>"},
    };
    size_t i, j, b, n;
    mdm_msg_t m;
    const char *why;
    char expect_why[128];

    (void) state;
    for (i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
        for (b = 0; b < sizeof(bad_values) / sizeof(bad_values[0]); b++) {
            const char *kv[14];
            char *x;

            n = 0;
            for (j = 0; j < 5; j++) {
                if (strcmp(base[j][0], all_keys[i]) != 0) {
                    kv[n++] = base[j][0];
                    kv[n++] = base[j][1];
                }
            }
            kv[n++] = all_keys[i];
            kv[n++] = bad_values[b];
            while (n < 14) {
                kv[n++] = NULL;
            }
            x = xmsg(kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], kv[6], kv[7],
                     kv[8], kv[9], kv[10], kv[11], kv[12], kv[13]);
            why = NULL;
            if (parse_str(x, MDM_EXPECT_ANY, &m, &why) != MDM_MSG_ERR_TYPE) {
                fail_msg("key %s as %s accepted", all_keys[i], bad_values[b]);
            }
            free(x);
            assert_cleared(&m);
            assert_non_null(why);
            snprintf(expect_why, sizeof(expect_why), "key %s: ", all_keys[i]);
            assert_true(strncmp(why, expect_why, strlen(expect_why)) == 0);
        }
    }

    /* the message from the example in the header */
    why = NULL;
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>Authenticate</string>", "UDID",
                        "<string>U1</string>", "Topic", "<integer>5</integer>",
                        NULL),
                   MDM_EXPECT_ANY, &m),
        MDM_MSG_ERR_TYPE);
    assert_int_equal(parse_str("<plist><dict><key>Topic</key><true/>"
                               "</dict></plist>",
                               MDM_EXPECT_ANY, &m, &why),
                     MDM_MSG_ERR_TYPE);
    assert_string_equal(why, "key Topic: expected string");

    /* strings are not bools, data is not a string */
    assert_int_equal(parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                                     "<string>U1</string>", "NotOnConsole",
                                     "<string>true</string>", NULL),
                                MDM_EXPECT_ANY, &m),
                     MDM_MSG_ERR_TYPE);
    assert_int_equal(parse_xmsg(xmsg("Status", "<string>Idle</string>", "UDID",
                                     "<data>VTE=</data>", NULL),
                                MDM_EXPECT_ANY, &m),
                     MDM_MSG_ERR_TYPE);
    assert_int_equal(
        parse_xmsg(xmsg("MessageType", "<string>TokenUpdate</string>", "UDID",
                        "<string>U1</string>", "Topic", "<string>t</string>",
                        "PushMagic", "<string>p</string>", "Token",
                        "<string>YXBwbGU=</string>", NULL),
                   MDM_EXPECT_ANY, &m),
        MDM_MSG_ERR_TYPE);
}

static void
test_error_chain_types(void **state)
{
    mdm_msg_t m;

    (void) state;
#define EC(items)                                                              \
    xmsg("Status", "<string>Error</string>", "UDID", "<string>U1</string>",    \
         "CommandUUID", "<string>c</string>", "ErrorChain", items, NULL)

    assert_int_equal(parse_xmsg(EC("<array/>"), MDM_EXPECT_REPORT, &m),
                     MDM_MSG_OK);
    assert_int_equal(m.error_chain_len, 0);
    assert_null(m.first_error_domain);
    mdm_msg_clear(&m);
    assert_int_equal(
        parse_xmsg(EC("<array><dict><key>ErrorCode</key><integer>-5</integer>"
                      "<key>ErrorDomain</key><string>D</string></dict>"
                      "<dict/><dict/></array>"),
                   MDM_EXPECT_REPORT, &m),
        MDM_MSG_OK);
    assert_int_equal(m.error_chain_len, 3);
    assert_int_equal(m.first_error_code, -5);
    assert_string_equal(m.first_error_domain, "D");
    mdm_msg_clear(&m);

    assert_int_equal(parse_xmsg(EC("<array><dict><key>ErrorCode</key>"
                                   "<string>12021</string></dict></array>"),
                                MDM_EXPECT_REPORT, &m),
                     MDM_MSG_ERR_TYPE);
    assert_int_equal(parse_xmsg(EC("<array><dict><key>ErrorDomain</key>"
                                   "<integer>1</integer></dict></array>"),
                                MDM_EXPECT_REPORT, &m),
                     MDM_MSG_ERR_TYPE);
    assert_int_equal(parse_xmsg(EC("<array><dict/><string>x</string></array>"),
                                MDM_EXPECT_REPORT, &m),
                     MDM_MSG_ERR_TYPE);
    assert_int_equal(parse_xmsg(EC("<dict/>"), MDM_EXPECT_REPORT, &m),
                     MDM_MSG_ERR_TYPE);
#undef EC
}

/* ------------------------------------------------------------------ */
/* Bad input                                                          */

static void
test_bad_input(void **state)
{
    static const unsigned char garbage[] = {0x00, 0xff, 0x3c, 0x21, 0x80,
                                            0x7f, 0x3c, 0x3f, 0x62, 0x70};
    unsigned char *buf;
    size_t len;
    mdm_msg_t m;
    const char *why;

    (void) state;
    why = NULL;
    assert_int_equal(
        mdm_msg_parse((const unsigned char *) "", 0, MDM_EXPECT_ANY, &m, &why),
        MDM_MSG_ERR_PLIST);
    assert_non_null(why);
    assert_cleared(&m);
    assert_int_equal(mdm_msg_parse(NULL, 0, MDM_EXPECT_ANY, &m, NULL),
                     MDM_MSG_ERR_PLIST);

    assert_int_equal(
        mdm_msg_parse(garbage, sizeof(garbage), MDM_EXPECT_ANY, &m, &why),
        MDM_MSG_ERR_PLIST);
    assert_cleared(&m);
    assert_int_equal(parse_str("not a plist at all", MDM_EXPECT_ANY, &m, &why),
                     MDM_MSG_ERR_PLIST);
    assert_int_equal(parse_str("bplist00", MDM_EXPECT_ANY, &m, &why),
                     MDM_MSG_ERR_PLIST);

    /* a body ending in '<', in a buffer with no byte after it */
    {
        static const char tail[] = "<plist><dict/></plist><";
        unsigned char *exact = malloc(sizeof(tail) - 1);

        assert_non_null(exact);
        memcpy(exact, tail, sizeof(tail) - 1);
        assert_int_not_equal(
            mdm_msg_parse(exact, sizeof(tail) - 1, MDM_EXPECT_ANY, &m, &why),
            MDM_MSG_OK);
        free(exact);
    }

    /* a real message cut in half, at every tenth of its length */
    buf = load("nanomdm/mdm_testdata_TokenUpdate.1.plist", &len);
    for (size_t cut = 1; cut < 10; cut++) {
        if (mdm_msg_parse(buf, len * cut / 10, MDM_EXPECT_ANY, &m, &why) ==
            MDM_MSG_OK) {
            fail_msg("truncated to %zu/10 accepted", cut);
        }
        assert_cleared(&m);
    }
    free(buf);

    /* not a dict at the top */
    assert_int_equal(parse_str("<plist><array><dict><key>UDID</key><string>U"
                               "</string></dict></array></plist>",
                               MDM_EXPECT_ANY, &m, &why),
                     MDM_MSG_ERR_PLIST);
    assert_cleared(&m);
    assert_int_equal(parse_str("<plist><string>Idle</string></plist>",
                               MDM_EXPECT_ANY, &m, &why),
                     MDM_MSG_ERR_PLIST);

    /* mdm_msg_clear is idempotent on a cleared message */
    mdm_msg_clear(&m);
    mdm_msg_clear(&m);
}

static char *
nested_xml(size_t depth, size_t *len)
{
    const char *head = "<plist><dict><key>Status</key><string>Idle</string>"
                       "<key>UDID</key><string>U1</string><key>X</key>";
    const char *tail = "</dict></plist>";
    size_t cap = strlen(head) + strlen(tail) + depth * 15 + 1, n;
    char *s = malloc(cap), *p;

    assert_non_null(s);
    p = s;
    n = strlen(head);
    memcpy(p, head, n);
    p += n;
    for (size_t i = 0; i < depth; i++) {
        memcpy(p, "<array>", 7);
        p += 7;
    }
    for (size_t i = 0; i < depth; i++) {
        memcpy(p, "</array>", 8);
        p += 8;
    }
    n = strlen(tail);
    memcpy(p, tail, n);
    p += n;
    *p = '\0';
    *len = (size_t) (p - s);
    return s;
}

static void
test_huge_input(void **state)
{
    mdm_msg_t m;
    const char *why;
    size_t len, n;
    char *s;

    (void) state;
    /* ~5 MB of nested arrays overflowed libplist's recursive parser */
    s = nested_xml(350000, &len);
    assert_true(len > 5000000);
    assert_int_equal(
        mdm_msg_parse((unsigned char *) s, len, MDM_EXPECT_ANY, &m, &why),
        MDM_MSG_ERR_PLIST);
    assert_cleared(&m);
    free(s);

    /* realistic nesting still parses, just past the limit does not */
    s = nested_xml(40, &len);
    assert_int_equal(
        mdm_msg_parse((unsigned char *) s, len, MDM_EXPECT_ANY, &m, &why),
        MDM_MSG_OK);
    mdm_msg_clear(&m);
    free(s);
    s = nested_xml(200, &len);
    assert_int_equal(
        mdm_msg_parse((unsigned char *) s, len, MDM_EXPECT_ANY, &m, &why),
        MDM_MSG_ERR_PLIST);
    free(s);

    /* a comment cannot hide the closing tags from the depth count */
    {
        char x[4096], *p = x;

        p += sprintf(p, "<plist><dict><key>Status</key><string>Idle</string>"
                        "<key>UDID</key><string>U1</string><key>X</key>");
        for (int i = 0; i < 100; i++) {
            p += sprintf(p, "<array><!--</array>-->");
        }
        for (int i = 0; i < 100; i++) {
            p += sprintf(p, "</array>");
        }
        sprintf(p, "</dict></plist>");
        assert_int_equal(parse_str(x, MDM_EXPECT_ANY, &m, &why),
                         MDM_MSG_ERR_PLIST);
    }

    /* a 5 MB string as the UDID: parses, but is no usable id */
    n = 5 * 1024 * 1024;
    s = malloc(n + 200);
    assert_non_null(s);
    len = (size_t) sprintf(s, "<plist><dict><key>Status</key><string>Idle"
                              "</string><key>UDID</key><string>");
    memset(s + len, 'A', n);
    len += n;
    len += (size_t) sprintf(s + len, "</string></dict></plist>");
    assert_int_equal(
        mdm_msg_parse((unsigned char *) s, len, MDM_EXPECT_ANY, &m, &why),
        MDM_MSG_ERR_ID);
    assert_cleared(&m);
    free(s);

    /*
     * a wide (not deep) array is fine; kept at 400 KB because libplist
     * grows arrays slowly and under ASan 5 MB of them takes 20 s
     */
    n = 20000;
    s = malloc(n * 20 + 200);
    assert_non_null(s);
    len = (size_t) sprintf(s, "<plist><dict><key>Status</key><string>Idle"
                              "</string><key>UDID</key><string>U1</string>"
                              "<key>L</key><array>");
    for (size_t i = 0; i < n; i++) {
        memcpy(s + len, "<integer>1</integer>", 20);
        len += 20;
    }
    len += (size_t) sprintf(s + len, "</array></dict></plist>");
    assert_true(len > 400000);
    assert_int_equal(
        mdm_msg_parse((unsigned char *) s, len, MDM_EXPECT_ANY, &m, &why),
        MDM_MSG_OK);
    assert_string_equal(m.id, "U1");
    mdm_msg_clear(&m);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Binary plists                                                      */

static unsigned char *
to_bin(const char *rel, uint32_t *blen)
{
    unsigned char *xml;
    size_t len;
    plist_t p = NULL;
    char *bin = NULL;

    xml = load(rel, &len);
    plist_from_xml((const char *) xml, (uint32_t) len, &p);
    free(xml);
    assert_non_null(p);
    plist_to_bin(p, &bin, blen);
    plist_free(p);
    assert_non_null(bin);
    return (unsigned char *) bin;
}

static void
test_binary_same_as_xml(void **state)
{
    static const char *const files[] = {
        "nanomdm/mdm_testdata_TokenUpdate.1.plist",
        "commandment/TokenUpdate/10.12.2-user.xml",
        "commandment/Errors/iOS-11.3.1-AvailableOSUpdatesFailure.xml",
        "commandment/DeviceInformation/macOS-10.13.1.xml",
    };
    mdm_msg_t x, b;
    unsigned char *bin;
    uint32_t blen;
    size_t i;
    const char *why = NULL;

    (void) state;
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        bin = to_bin(files[i], &blen);
        assert_memory_equal(bin, "bplist00", 8);
        assert_int_equal(parse_file(files[i], MDM_EXPECT_ANY, &x), MDM_MSG_OK);
        assert_int_equal(mdm_msg_parse(bin, blen, MDM_EXPECT_ANY, &b, &why),
                         MDM_MSG_OK);
        assert_int_equal(b.type, x.type);
        assert_int_equal(b.status, x.status);
        assert_int_equal(b.enr_type, x.enr_type);
        assert_string_equal(b.id, x.id);
        assert_string_equal(b.device_id, x.device_id);
        assert_string_equal(b.udid, x.udid);
        if (x.topic != NULL) {
            assert_string_equal(b.topic, x.topic);
            assert_string_equal(b.push_magic, x.push_magic);
        }
        assert_int_equal(b.token.len, x.token.len);
        if (x.token.len != 0) {
            assert_memory_equal(b.token.ptr, x.token.ptr, x.token.len);
        }
        assert_int_equal(b.unlock_token.len, x.unlock_token.len);
        if (x.unlock_token.len != 0) {
            assert_memory_equal(b.unlock_token.ptr, x.unlock_token.ptr,
                                x.unlock_token.len);
        }
        assert_int_equal(b.not_on_console, x.not_on_console);
        assert_int_equal(b.awaiting_configuration, x.awaiting_configuration);
        if (x.command_uuid != NULL) {
            assert_string_equal(b.command_uuid, x.command_uuid);
        }
        assert_int_equal(b.error_chain_len, x.error_chain_len);
        assert_int_equal(b.first_error_code, x.first_error_code);
        mdm_msg_clear(&x);
        mdm_msg_clear(&b);

        /* and truncated binary is refused cleanly */
        assert_int_not_equal(
            mdm_msg_parse(bin, blen / 2, MDM_EXPECT_ANY, &b, &why), MDM_MSG_OK);
        assert_cleared(&b);
        free(bin);
    }
}

/*
 * A hand-made bplist00 of n arrays where array i holds `fan` references
 * to array i+1 (the last one is empty); the top object is array 0. With
 * cycle set, the last array refers back to array 0.
 */
static unsigned char *
bplist_chain(unsigned n, unsigned fan, int cycle, size_t *len)
{
    unsigned char *b = malloc(8 + n * (1 + fan) + n * 2 + 32), *p;
    unsigned i, k, off[300];

    assert_true(n < 250 && fan < 15);
    assert_non_null(b);
    memcpy(b, "bplist00", 8);
    p = b + 8;
    for (i = 0; i < n; i++) {
        off[i] = (unsigned) (p - b);
        if (i + 1 < n) {
            *p++ = (unsigned char) (0xa0 | fan);
            for (k = 0; k < fan; k++) {
                *p++ = (unsigned char) (i + 1);
            }
        } else if (cycle) {
            *p++ = 0xa1;
            *p++ = 0;
        } else {
            *p++ = 0xa0;
        }
    }
    {
        size_t table = (size_t) (p - b);

        for (i = 0; i < n; i++) {
            *p++ = (unsigned char) (off[i] >> 8);
            *p++ = (unsigned char) off[i];
        }
        memset(p, 0, 32);
        p[6] = 2;
        p[7] = 1;
        p[15] = (unsigned char) n;
        p[23] = 0;
        p[30] = (unsigned char) (table >> 8);
        p[31] = (unsigned char) table;
        p += 32;
    }
    *len = (size_t) (p - b);
    return b;
}

static void
test_binary_bombs(void **state)
{
    unsigned char *b;
    size_t len;
    mdm_msg_t m;

    (void) state;
    /* sanity: a short chain is a valid plist, just not a dict */
    b = bplist_chain(5, 1, 0, &len);
    assert_int_equal(mdm_msg_parse(b, len, MDM_EXPECT_ANY, &m, NULL),
                     MDM_MSG_ERR_PLIST);
    {
        plist_t p = NULL;

        plist_from_bin((const char *) b, (uint32_t) len, &p);
        assert_non_null(p);
        assert_int_equal(plist_get_node_type(p), PLIST_ARRAY);
        plist_free(p);
    }
    free(b);

    /* 2^60 nodes once expanded: libplist would never finish */
    b = bplist_chain(60, 2, 0, &len);
    assert_int_equal(mdm_msg_parse(b, len, MDM_EXPECT_ANY, &m, NULL),
                     MDM_MSG_ERR_PLIST);
    free(b);

    /* deeper than the limit */
    b = bplist_chain(200, 1, 0, &len);
    assert_int_equal(mdm_msg_parse(b, len, MDM_EXPECT_ANY, &m, NULL),
                     MDM_MSG_ERR_PLIST);
    free(b);

    /* a cycle */
    b = bplist_chain(3, 1, 1, &len);
    assert_int_equal(mdm_msg_parse(b, len, MDM_EXPECT_ANY, &m, NULL),
                     MDM_MSG_ERR_PLIST);
    assert_cleared(&m);
    free(b);
}

/* ------------------------------------------------------------------ */
/* Names                                                              */

static void
test_names(void **state)
{
    (void) state;
    assert_string_equal(mdm_msg_type_name(MDM_MSG_NONE), "");
    assert_string_equal(mdm_msg_type_name(MDM_MSG_AUTHENTICATE),
                        "Authenticate");
    assert_string_equal(mdm_msg_type_name(MDM_MSG_RETURN_TO_SERVICE),
                        "ReturnToService");
    assert_string_equal(mdm_msg_type_name(MDM_MSG_REPORT), "Report");
    assert_string_equal(mdm_status_name(MDM_STATUS_NONE), "");
    assert_string_equal(mdm_status_name(MDM_STATUS_IDLE), "Idle");
    assert_string_equal(mdm_status_name(MDM_STATUS_COMMAND_FORMAT_ERROR),
                        "CommandFormatError");
    assert_string_equal(mdm_enr_type_name(MDM_ENR_NONE), "");
    assert_string_equal(mdm_enr_type_name(MDM_ENR_DEVICE), "Device");
    assert_string_equal(mdm_enr_type_name(MDM_ENR_USER), "User");
    assert_string_equal(mdm_enr_type_name(MDM_ENR_SHARED_IPAD), "SharediPad");
    assert_string_equal(mdm_enr_type_name(MDM_ENR_USER_ENROLLMENT_DEVICE),
                        "UserEnrollmentDevice");
    assert_string_equal(mdm_enr_type_name(MDM_ENR_USER_ENROLLMENT),
                        "UserEnrollment");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authenticate_samples),
        cmocka_unit_test(test_token_update_samples),
        cmocka_unit_test(test_checkout_samples),
        cmocka_unit_test(test_report_samples),
        cmocka_unit_test(test_enrollment_table),
        cmocka_unit_test(test_enrollment_bad_ids),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_checkin_types_and_required),
        cmocka_unit_test(test_checkin_optional_keys),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_wrong_type_every_key),
        cmocka_unit_test(test_error_chain_types),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_huge_input),
        cmocka_unit_test(test_binary_same_as_xml),
        cmocka_unit_test(test_binary_bombs),
        cmocka_unit_test(test_names),
    };

    if (getenv("MDM_SAMPLES") == NULL) {
        fprintf(stderr, "MDM_SAMPLES is not set\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
