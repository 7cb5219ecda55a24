/*
 * Unit tests for core/mdm_msg.c: wrong types, malformed, huge and hostile
 * input, binary plists, names. Real samples and dispatch: test_msg.c.
 */
#include "test_msg_fixture.h"

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
