/*
 * SCEP's vocabulary (RFC 8894 section 3.2.1): the OIDs of the signed
 * attributes of a pkiMessage, created once and never registered with
 * OpenSSL, and the names of message types and failInfo values that the
 * logs and $mdm_scep_* variables use.
 */
#include "mdm_scep_int.h"

#include <pthread.h>

#include <openssl/objects.h>

static mdm_scep_oids_t oids;
static pthread_once_t oid_once = PTHREAD_ONCE_INIT;

static void
oid_init(void)
{
    /* no_name = 1: dotted numbers only, nothing is registered globally */
    oids.msgtype = OBJ_txt2obj("2.16.840.1.113733.1.9.2", 1);
    oids.status = OBJ_txt2obj("2.16.840.1.113733.1.9.3", 1);
    oids.failinfo = OBJ_txt2obj("2.16.840.1.113733.1.9.4", 1);
    oids.snonce = OBJ_txt2obj("2.16.840.1.113733.1.9.5", 1);
    oids.rnonce = OBJ_txt2obj("2.16.840.1.113733.1.9.6", 1);
    oids.txid = OBJ_txt2obj("2.16.840.1.113733.1.9.7", 1);
}

const mdm_scep_oids_t *
mdm_scep_oids(void)
{
    pthread_once(&oid_once, oid_init);
    if (oids.msgtype && oids.status && oids.failinfo && oids.snonce &&
        oids.rnonce && oids.txid) {
        return &oids;
    }
    return NULL;
}

const char *
mdm_scep_fail_name(int f)
{
    static const char *const names[] = {"badAlg", "badMessageCheck",
                                        "badRequest", "badTime", "badCertId"};

    return f >= 0 && f <= 4 ? names[f] : "unknown";
}

const char *
mdm_scep_msg_type_name(int t)
{
    switch (t) {
    case MT_RENEWAL:
        return "RenewalReq";
    case MT_PKCSREQ:
        return "PKCSReq";
    case MT_CERTPOLL:
        return "CertPoll";
    case MT_GETCERT:
        return "GetCert";
    case MT_CERTREP:
        return "CertRep";
    case 22:
        return "GetCRL";
    }
    return "unknown";
}
