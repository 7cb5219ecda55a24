/*
 * Unit tests for core/mdm_msg.c: real device messages from $MDM_SAMPLES
 * (t/samples), enrollment ids, check-in types and dispatch. Wrong types,
 * malformed and hostile input: test_msg_input.c.
 */
#include "test_msg_fixture.h"

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
    };

    if (getenv("MDM_SAMPLES") == NULL) {
        fprintf(stderr, "MDM_SAMPLES is not set\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
