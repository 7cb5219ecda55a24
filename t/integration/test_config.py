"""`nginx -t` and `apache2 -t` on broken variants of the example
configurations (conf/nginx, conf/apache): they must fail, naming the
directive."""

import re

import pytest

# case: {server: (file, exact rendered text to replace, replacement,
#                 directive named)}
BROKEN = {
    "binding": {
        "nginx": ("mdm-server.conf", "mdm_binding strict;",
                  "mdm_binding sometimes;", "mdm_binding"),
        "apache": ("mdm-vhost.conf", "MDMBinding strict\n",
                   "MDMBinding sometimes\n", "MDMBinding"),
    },
    "topic": {
        "nginx": ("mdm-server.conf", "mdm_topic {TOPICS};",
                  "mdm_topic org.example.not-apple;", "mdm_topic"),
        "apache": ("mdm-vhost.conf", "MDMTopic {TOPICS}\n",
                   "MDMTopic org.example.not-apple\n", "MDMTopic"),
    },
    "topic-one-bad": {
        "nginx": ("mdm-server.conf", "mdm_topic {TOPICS};",
                  "mdm_topic com.apple.mgmt.External.ok bogus;",
                  "mdm_topic"),
        "apache": ("mdm-vhost.conf", "MDMTopic {TOPICS}\n",
                   "MDMTopic com.apple.mgmt.External.ok bogus\n",
                   "MDMTopic"),
    },
    "ca-missing": {
        "nginx": ("mdm-server.conf", "mdm_identity_ca {PKI}/identity-ca.pem;",
                  "mdm_identity_ca {PKI}/no-such-ca.pem;",
                  "mdm_identity_ca"),
        "apache": ("mdm-vhost.conf", 'MDMIdentityCA "{PKI}/identity-ca.pem"',
                   'MDMIdentityCA "{PKI}/no-such-ca.pem"', "MDMIdentityCA"),
    },
    "ca-not-pem": {
        "nginx": ("mdm-server.conf", "mdm_identity_ca {PKI}/identity-ca.pem;",
                  "mdm_identity_ca {PKI}/dev1.key;", "mdm_identity_ca"),
        "apache": ("mdm-vhost.conf", 'MDMIdentityCA "{PKI}/identity-ca.pem"',
                   'MDMIdentityCA "{PKI}/dev1.key"', "MDMIdentityCA"),
    },
    "redis-hostname": {
        "nginx": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};",
                  "mdm_redis localhost:{REDISPORT};", "mdm_redis"),
        "apache": ("httpd.conf", "MDMRedis 127.0.0.1:{REDISPORT}\n",
                   "MDMRedis localhost:{REDISPORT}\n", "MDMRedis"),
    },
    "redis-bad-port": {
        "nginx": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};",
                  "mdm_redis 127.0.0.1:99999;", "mdm_redis"),
        "apache": ("httpd.conf", "MDMRedis 127.0.0.1:{REDISPORT}\n",
                   "MDMRedis 127.0.0.1:99999\n", "MDMRedis"),
    },
    "redis-no-port": {
        "nginx": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};",
                  "mdm_redis 127.0.0.1:;", "mdm_redis"),
        "apache": ("httpd.conf", "MDMRedis 127.0.0.1:{REDISPORT}\n",
                   "MDMRedis 127.0.0.1:\n", "MDMRedis"),
    },
    "redis-port-word": {
        "nginx": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};",
                  "mdm_redis 127.0.0.1:redis;", "mdm_redis"),
        "apache": ("httpd.conf", "MDMRedis 127.0.0.1:{REDISPORT}\n",
                   "MDMRedis 127.0.0.1:redis\n", "MDMRedis"),
    },
    "redis-timeout": {
        "nginx": ("nginx.conf", "mdm_redis_timeout 2s;",
                  "mdm_redis_timeout soon;", "mdm_redis_timeout"),
        "apache": ("httpd.conf", "MDMRedisTimeout 2000\n",
                   "MDMRedisTimeout soon\n", "MDMRedisTimeout"),
    },
    "redis-connect-timeout": {
        "nginx": ("nginx.conf", "mdm_redis_connect_timeout 1s;",
                  "mdm_redis_connect_timeout -1s;",
                  "mdm_redis_connect_timeout"),
        "apache": ("httpd.conf", "MDMRedisConnectTimeout 1000\n",
                   "MDMRedisConnectTimeout 0\n", "MDMRedisConnectTimeout"),
    },
    "identity": {
        "nginx": ("mdm-server.conf", "mdm_identity signature tls;",
                  "mdm_identity signature carrier-pigeon;", "mdm_identity"),
        "apache": ("mdm-vhost.conf", "MDMIdentity signature tls\n",
                   "MDMIdentity signature carrier-pigeon\n", "MDMIdentity"),
    },
    "results-ttl": {
        "nginx": ("mdm-server.conf", "mdm_results_ttl 7d;",
                  "mdm_results_ttl forever;", "mdm_results_ttl"),
        "apache": ("mdm-vhost.conf", "MDMResultsTTL 604800\n",
                   "MDMResultsTTL forever\n", "MDMResultsTTL"),
    },
    "user-auth": {
        "nginx": ("mdm-server.conf", "mdm_binding strict;",
                  "mdm_binding strict; mdm_user_authenticate maybe;",
                  "mdm_user_authenticate"),
        "apache": ("mdm-vhost.conf", "MDMBinding strict\n",
                   "MDMBinding strict\n    MDMUserAuthenticate maybe\n",
                   "MDMUserAuthenticate"),
    },
    "events-maxlen": {
        "nginx": ("mdm-server.conf", "mdm_binding strict;",
                  "mdm_binding strict; mdm_events_maxlen -5;",
                  "mdm_events_maxlen"),
        "apache": ("mdm-vhost.conf", "MDMBinding strict\n",
                   "MDMBinding strict\n    MDMEventsMaxlen -5\n",
                   "MDMEventsMaxlen"),
    },
    "admin-key-short": {
        "nginx": ("mdm-server.conf", "mdm_admin_key {ADMIN_KEY};",
                  "mdm_admin_key short;", "mdm_admin_key"),
        "apache": ("mdm-vhost.conf", "MDMAdminKey {ADMIN_KEY}\n",
                   "MDMAdminKey short\n", "MDMAdminKey"),
    },
    "verify-argument": {
        "nginx": ("mdm-verify-proxy.conf", "mdm_verify;",
                  "mdm_verify maybe;", "mdm_verify"),
        "apache": ("mdm-verify-proxy.conf", "MDMVerify On\n",
                   "MDMVerify Maybe\n", "MDMVerify"),
    },
    # directives that need another one: refused at -t, not at the first
    # request
    "identity-header-unset": {
        "nginx": ("mdm-server.conf", "mdm_identity_header Client-Cert;",
                  "", "mdm_identity_header"),
        "apache": ("mdm-vhost.conf", "MDMIdentityHeader Client-Cert\n",
                   "", "MDMIdentityHeader"),
    },
    "ca-unset": {
        "nginx": ("mdm-server.conf", "mdm_identity_header Client-Cert;\n"
                  "    mdm_identity_ca {PKI}/identity-ca.pem;",
                  "mdm_identity_header Client-Cert;", "mdm_identity_ca"),
        "apache": ("mdm-vhost.conf", "MDMIdentityHeader Client-Cert\n"
                   '    MDMIdentityCA "{PKI}/identity-ca.pem"\n',
                   "MDMIdentityHeader Client-Cert\n", "MDMIdentityCA"),
    },
    "scep-key-missing": {
        "nginx": ("mdm-enroll.conf", "mdm_scep_ca_key {PKI}/scep-ca.key;",
                  "mdm_scep_ca_key {PKI}/no-such.key;", "mdm_scep_ca_key"),
        "apache": ("mdm-enroll.conf", 'MDMSCEPCAKey "{PKI}/scep-ca.key"',
                   'MDMSCEPCAKey "{PKI}/no-such.key"', "MDMSCEPCAKey"),
    },
    "scep-approval-bad": {
        "nginx": ("mdm-enroll.conf", "mdm_scep_ca_key {PKI}/scep-ca.key;",
                  "mdm_scep_ca_key {PKI}/scep-ca.key;\nmdm_scep_approval sometimes;",
                  "mdm_scep_approval"),
        "apache": ("mdm-enroll.conf", 'MDMSCEPCAKey "{PKI}/scep-ca.key"',
                   'MDMSCEPCAKey "{PKI}/scep-ca.key"\nMDMSCEPApproval sometimes',
                   "MDMSCEPApproval"),
    },
    "scep-next-ca-not-ca": {
        "nginx": ("mdm-enroll.conf", "mdm_scep_ca_key {PKI}/scep-ca.key;",
                  "mdm_scep_ca_key {PKI}/scep-ca.key;\nmdm_scep_next_ca_cert {PKI}/dev1.pem;",
                  "mdm_scep_next_ca_cert"),
        "apache": ("mdm-enroll.conf", 'MDMSCEPCAKey "{PKI}/scep-ca.key"',
                   'MDMSCEPCAKey "{PKI}/scep-ca.key"\nMDMSCEPNextCACert "{PKI}/dev1.pem"',
                   "MDMSCEPNextCACert"),
    },
    "scep-key-absent": {
        "nginx": ("mdm-enroll.conf", "mdm_scep_ca_key {PKI}/scep-ca.key;",
                  "", "mdm_scep_ca_key"),
        "apache": ("mdm-enroll.conf", 'MDMSCEPCAKey "{PKI}/scep-ca.key"',
                   "", "MDMSCEPCAKey"),
    },
    "scep-key-mismatch": {
        "nginx": ("mdm-enroll.conf", "mdm_scep_ca_key {PKI}/scep-ca.key;",
                  "mdm_scep_ca_key {PKI}/dev1.key;", "mdm_scep_ca_key"),
        "apache": ("mdm-enroll.conf", 'MDMSCEPCAKey "{PKI}/scep-ca.key"',
                   'MDMSCEPCAKey "{PKI}/dev1.key"', "MDMSCEPCAKey"),
    },
    "scep-crl-url-bad": {
        "nginx": ("mdm-enroll.conf", "mdm_scep_crl_url http://",
                  "mdm_scep_crl_url ftp://", "mdm_scep_crl_url"),
        "apache": ("mdm-enroll.conf", 'MDMSCEPCRLURL "http://',
                   'MDMSCEPCRLURL "ftp://', "MDMSCEPCRLURL"),
    },
    "profile-url-bad": {
        "nginx": ("mdm-server.conf", "mdm_profile_server_url https://",
                  "mdm_profile_server_url ftp://", "mdm_profile_server_url"),
        "apache": ("mdm-vhost.conf", "MDMProfileServerURL https://",
                   "MDMProfileServerURL ftp://", "MDMProfileServerURL"),
    },
    "profile-topic-bad": {
        "nginx": ("mdm-server.conf", "mdm_profile_topic {TOPIC0};",
                  "mdm_profile_topic not.a.topic;", "mdm_profile_topic"),
        "apache": ("mdm-vhost.conf", "MDMProfileTopic {TOPIC0}\n",
                   "MDMProfileTopic not.a.topic\n", "MDMProfileTopic"),
    },
    "metrics-zone-small": {
        "nginx": ("nginx.conf", "mdm_metrics_zone mdm_metrics 64k;",
                  "mdm_metrics_zone mdm_metrics 4k;", "mdm_metrics_zone"),
    },
    "metrics-flag": {
        "apache": ("httpd.conf", "MDMMetrics On\n", "MDMMetrics Sometimes\n",
                   "MDMMetrics"),
    },
    "metrics-zone-size-word": {
        "nginx": ("nginx.conf", "mdm_metrics_zone mdm_metrics 64k;",
                  "mdm_metrics_zone mdm_metrics big;", "mdm_metrics_zone"),
    },
    "metrics-zone-twice": {
        "nginx": ("nginx.conf", "mdm_metrics_zone mdm_metrics 64k;",
                  "mdm_metrics_zone mdm_metrics 64k; "
                  "mdm_metrics_zone other 64k;", "mdm_metrics_zone"),
    },
    # the counters are per server: not in a virtual host
    "metrics-in-vhost": {
        "apache": ("mdm-vhost.conf", "MDMBinding strict\n",
                   "MDMBinding strict\n    MDMMetrics Off\n", "MDMMetrics"),
    },
    "metrics-argument": {
        "nginx": ("mdm-server.conf", "mdm_metrics;", "mdm_metrics all;",
                  "mdm_metrics"),
    },
    "metrics-without-zone": {
        "nginx": ("nginx.conf", "mdm_metrics_zone mdm_metrics 64k;", "",
                  "mdm_metrics_zone"),
    },
    "redis-unset": {
        "nginx": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};", "",
                  "mdm_redis"),
        "apache": ("httpd.conf", "MDMRedis 127.0.0.1:{REDISPORT}\n", "",
                   "MDMRedis"),
    },
}

# what the test run prints on success, and on a refused configuration
CONFIG_OK = {"nginx": "test is successful", "apache": "Syntax OK"}
# Apache refuses a bad directive with "Syntax error on line N", and an
# incomplete section (found after parsing, in check_config) with MDM07006
# and the file and line of its virtual host
CONFIG_BAD = {"nginx": r"\[emerg\]",
              "apache": r"Syntax error on line \d+|"
                        r"\[mdm:emerg\] .* MDM07006 (\S+:\d+|main server): "}


def render_variant(server, run, fname, old, new):
    hits = []

    def edit(name, text):
        if name == fname:
            assert old in text, "%r not in rendered %s" % (old, name)
            hits.append(name)
            return text.replace(old, new)
        return text
    conf = server.render(run, edit)
    assert hits == [fname]
    return conf


def subst(s, server):
    return (s.replace("{TOPICS}", " ".join(server.topics))
             .replace("{TOPIC0}", server.topics[0])
             .replace("{PKI}", server.pki.dir)
             .replace("{ADMIN_KEY}", server.admin_key)
             .replace("{REDISPORT}", str(server.redis.port)))


def test_example_config_ok(server, tmp_path):
    run = str(tmp_path / "ok")
    conf = server.render(run)
    t = server.test_config(run, conf)
    assert t.returncode == 0, t.stderr
    assert CONFIG_OK[server.name] in t.stderr + t.stdout, t.stderr


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config(case, server, tmp_path):
    if server.name not in BROKEN[case]:
        pytest.skip("no %s variant of %s" % (server.name, case))
    fname, old, new, directive = BROKEN[case][server.name]
    run = str(tmp_path / case)
    conf = render_variant(server, run, fname, subst(old, server),
                          subst(new, server))
    t = server.test_config(run, conf)
    out = t.stderr + t.stdout
    assert t.returncode != 0, "%s -t accepted %s:\n%s" % (
        server.name, new, out)
    assert re.search(re.escape(directive) + r"(?![A-Za-z_])", out), out
    assert re.search(CONFIG_BAD[server.name], out), out
