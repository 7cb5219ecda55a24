/*
 * Reading what the CA answers as a client does: the CertRep (signature,
 * attributes, envelope, the certificate inside), every issued
 * certificate's fields, the certificate a plan records, and a FAILURE
 * with its log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "test_scep.h"

/* ------------------------------------------------------------------ */
/* reading a CertRep                                                   */

const ASN1_TYPE *
attr1(CMS_SignerInfo *si, const ASN1_OBJECT *o)
{
    int i = CMS_signed_get_attr_by_OBJ(si, o, -1);

    if (i < 0) {
        return NULL;
    }
    return X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, i), 0);
}

static int
attr_int(CMS_SignerInfo *si, const ASN1_OBJECT *o)
{
    const ASN1_TYPE *t = attr1(si, o);
    char buf[16];

    if (t == NULL) {
        return -1;
    }
    assert_int_equal(t->type, V_ASN1_PRINTABLESTRING);
    snprintf(buf, sizeof(buf), "%.*s", ASN1_STRING_length(t->value.asn1_string),
             ASN1_STRING_get0_data(t->value.asn1_string));
    return atoi(buf);
}

/*
 * Check everything a client checks: signed by the CA, messageType 3,
 * transactionID and recipientNonce echoed, a fresh 16-byte senderNonce,
 * and on SUCCESS an envelope whose RecipientInfo names the requester's
 * signer certificate (issuer and serial). With key, the envelope is
 * opened and the issued certificate returned in out->issued.
 */
void
read_certrep(const mdm_response_t *resp, const char *txid,
             const unsigned char *nonce, size_t nonce_len, X509 *requester,
             EVP_PKEY *key, certrep_t *out)
{
    const unsigned char *p = resp->body;
    CMS_ContentInfo *cms, *env = NULL, *inner;
    STACK_OF(X509) * signers, *certs;
    CMS_SignerInfo *si;
    const ASN1_TYPE *t;
    ASN1_OCTET_STRING **pos;
    X509_ALGOR *dig;
    const ASN1_OBJECT *obj;
    PKCS7 *p7;
    X509_NAME *iss = NULL;
    ASN1_INTEGER *sno = NULL;
    BIO *bio;
    char *data;
    long n;

    memset(out, 0, sizeof(*out));
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "application/x-pki-message");
    cms = d2i_CMS_ContentInfo(NULL, &p, (long) resp->body_len);
    assert_non_null(cms);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
    /* signature checked; the signer must be the CA (no chain: the sample
     * CA is expired today) */
    assert_int_equal(CMS_verify(cms, NULL, NULL, NULL, NULL,
                                CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY),
                     1);
    signers = CMS_get0_signers(cms);
    assert_int_equal(sk_X509_num(signers), 1);
    assert_int_equal(X509_cmp(sk_X509_value(signers, 0),
                              expect_signer ? expect_signer : sample_ca),
                     0);
    sk_X509_free(signers);
    si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    X509_ALGOR_get0(&obj, NULL, NULL, dig);
    out->md_nid = OBJ_obj2nid(obj);

    assert_int_equal(attr_int(si, o_msgtype), 3);
    out->status = attr_int(si, o_status);
    out->fail = attr_int(si, o_fail);
    t = attr1(si, o_txid);
    assert_non_null(t);
    assert_int_equal(ASN1_STRING_length(t->value.asn1_string), strlen(txid));
    assert_memory_equal(ASN1_STRING_get0_data(t->value.asn1_string), txid,
                        strlen(txid));
    t = attr1(si, o_rnonce);
    assert_non_null(t);
    assert_int_equal(t->type, V_ASN1_OCTET_STRING);
    assert_int_equal(ASN1_STRING_length(t->value.octet_string), nonce_len);
    assert_memory_equal(ASN1_STRING_get0_data(t->value.octet_string), nonce,
                        nonce_len);
    t = attr1(si, o_snonce);
    assert_non_null(t);
    assert_int_equal(ASN1_STRING_length(t->value.octet_string), 16);
    assert_false(
        nonce_len == 16 &&
        memcmp(ASN1_STRING_get0_data(t->value.octet_string), nonce, 16) == 0);

    pos = CMS_get0_content(cms);
    if (out->status == 3) {
        /* PENDING: no failInfo, no envelope */
        assert_int_equal(out->fail, -1);
        assert_true(pos == NULL || *pos == NULL ||
                    ASN1_STRING_length(*pos) == 0);
        CMS_ContentInfo_free(cms);
        return;
    }
    if (out->status != 0) {
        assert_int_equal(out->status, 2);
        assert_true(out->fail >= 0 && out->fail <= 4);
        /* no envelope */
        assert_true(pos == NULL || *pos == NULL ||
                    ASN1_STRING_length(*pos) == 0);
        CMS_ContentInfo_free(cms);
        return;
    }
    assert_int_equal(out->fail, -1);
    assert_non_null(pos);
    assert_non_null(*pos);
    p = ASN1_STRING_get0_data(*pos);
    p7 = d2i_PKCS7(NULL, &p, ASN1_STRING_length(*pos));
    assert_non_null(p7);
    out->cipher_nid =
        OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    PKCS7_free(p7);
    p = ASN1_STRING_get0_data(*pos);
    env = d2i_CMS_ContentInfo(NULL, &p, ASN1_STRING_length(*pos));
    assert_non_null(env);
    assert_int_equal(sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(env)), 1);
    assert_int_equal(
        CMS_RecipientInfo_ktri_get0_signer_id(
            sk_CMS_RecipientInfo_value(CMS_get0_RecipientInfos(env), 0), NULL,
            &iss, &sno),
        1);
    assert_non_null(iss);
    assert_int_equal(X509_NAME_cmp(iss, X509_get_issuer_name(requester)), 0);
    assert_int_equal(ASN1_INTEGER_cmp(sno, X509_get0_serialNumber(requester)),
                     0);
    if (key != NULL) {
        bio = BIO_new(BIO_s_mem());
        assert_int_equal(
            CMS_decrypt(env, key, requester, NULL, bio, CMS_BINARY), 1);
        n = BIO_get_mem_data(bio, &data);
        p = (const unsigned char *) data;
        inner = d2i_CMS_ContentInfo(NULL, &p, n);
        assert_non_null(inner);
        assert_int_equal(OBJ_obj2nid(CMS_get0_type(inner)), NID_pkcs7_signed);
        assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(inner)), 0);
        certs = CMS_get1_certs(inner);
        assert_int_equal(sk_X509_num(certs), 1);
        out->issued = sk_X509_shift(certs);
        sk_X509_pop_free(certs, X509_free);
        CMS_ContentInfo_free(inner);
        BIO_free(bio);
    }
    CMS_ContentInfo_free(env);
    CMS_ContentInfo_free(cms);
}

void
check_issued(X509 *x, EVP_PKEY *pub, const char *cn, time_t now)
{
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    EXTENDED_KEY_USAGE *eku;
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    X509_NAME_ENTRY *e;
    int crit = -1, i;
    time_t t;

    assert_int_equal(X509_get_version(x), 2);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(sample_ca)), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
                                   X509_get_subject_name(sample_ca)),
                     0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), pub), 1);
    e = X509_NAME_get_entry(X509_get_subject_name(x), 0);
    assert_non_null(e);
    assert_string_equal(
        (const char *) ASN1_STRING_get0_data(X509_NAME_ENTRY_get_data(e)), cn);
    /* random, positive, at most 128 bits */
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128);
    BN_free(bn);
    /* validity: a little in the past, 365 days or the CA's end */
    t = now - 300;
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &t), -1);
    t = now - 301;
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &t), 1);
    assert_true(ASN1_TIME_compare(X509_get0_notAfter(x),
                                  X509_get0_notAfter(sample_ca)) <= 0);
    t = now + 365 * DAY + 1;
    assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), &t), -1);

    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(bc->ca, 0);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 0), 1); /* digitalSignature */
    for (i = 1; i < 9; i++) {
        assert_int_equal(ASN1_BIT_STRING_get_bit(ku, i), 0);
    }
    ASN1_BIT_STRING_free(ku);
    eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)),
                     NID_client_auth);
    EXTENDED_KEY_USAGE_free(eku);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_non_null(X509_get0_authority_key_id(x));
}

X509 *
planned_cert(const mdm_scep_req_t *r)
{
    const mdm_plan_t *p = mdm_scep_req_plan(r);
    const unsigned char *d;

    assert_non_null(p);
    assert_int_equal(p->ncmds, 1);
    assert_true(p->cmds[0].argc == 23);
    d = (const unsigned char *) p->cmds[0].argv[14];
    return d2i_X509(NULL, &d, (long) p->cmds[0].argvlen[14]);
}

X509 *
sample_signer(const char *file)
{
    size_t len;
    unsigned char *m = slurp(sample_path(file), &len);
    const unsigned char *p = m;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long) len);
    STACK_OF(X509) * certs;
    X509 *x;

    assert_non_null(cms);
    certs = CMS_get1_certs(cms);
    assert_int_equal(sk_X509_num(certs), 1);
    x = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);
    free(m);
    return x;
}

void
expect_fail(const mdm_scep_ca_t *ca, const unsigned char *m, size_t len,
            time_t now, int fail, const char *id, const char *txid)
{
    mdm_scep_req_t *r;
    mdm_step_t step;
    certrep_t cr;

    r = post(ca, m, len, now, &step);
    assert_int_equal(step, MDM_STEP_DONE);
    if (strcmp(last_id, id) != 0) {
        fail_msg("expected %s, got %s %s", id, last_id, last_msg);
    }
    assert_int_equal(nlogs, 1);
    read_certrep(mdm_scep_req_response(r), txid ? txid : "TXID-0001",
                 test_nonce, 16, NULL, NULL, &cr);
    assert_int_equal(cr.status, 2);
    assert_int_equal(cr.fail, fail);
    assert_string_equal(mdm_scep_req_var(r, MDM_SCEP_VAR_ERROR_ID), id);
    mdm_scep_req_free(r);
}
