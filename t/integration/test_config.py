"""`nginx -t` on broken variants of the example configuration: it must
fail, naming the directive."""

import re

import pytest

# (file, exact rendered text to replace, replacement, directive named)
BROKEN = {
    "binding": ("mdm-server.conf", "mdm_binding strict;",
                "mdm_binding sometimes;", "mdm_binding"),
    "topic": ("mdm-server.conf", "mdm_topic {TOPICS};",
              "mdm_topic org.example.not-apple;", "mdm_topic"),
    "topic-one-bad": ("mdm-server.conf", "mdm_topic {TOPICS};",
                      "mdm_topic com.apple.mgmt.External.ok bogus;",
                      "mdm_topic"),
    "ca-missing": ("mdm-server.conf", "mdm_identity_ca {PKI}/cafile.pem;",
                   "mdm_identity_ca {PKI}/no-such-ca.pem;",
                   "mdm_identity_ca"),
    "ca-not-pem": ("mdm-server.conf", "mdm_identity_ca {PKI}/cafile.pem;",
                   "mdm_identity_ca {PKI}/dev1.key;", "mdm_identity_ca"),
    "redis-hostname": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};",
                       "mdm_redis localhost:{REDISPORT};", "mdm_redis"),
    "redis-bad-port": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};",
                       "mdm_redis 127.0.0.1:99999;", "mdm_redis"),
    "redis-no-port": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};",
                      "mdm_redis 127.0.0.1:;", "mdm_redis"),
    "redis-port-word": ("nginx.conf", "mdm_redis 127.0.0.1:{REDISPORT};",
                        "mdm_redis 127.0.0.1:redis;", "mdm_redis"),
    "redis-timeout": ("nginx.conf", "mdm_redis_timeout 2s;",
                      "mdm_redis_timeout soon;", "mdm_redis_timeout"),
    "identity": ("mdm-server.conf", "mdm_identity signature tls;",
                 "mdm_identity signature carrier-pigeon;", "mdm_identity"),
    "results-ttl": ("mdm-server.conf", "mdm_results_ttl 7d;",
                    "mdm_results_ttl forever;", "mdm_results_ttl"),
    "user-auth": ("mdm-server.conf", "mdm_binding strict;",
                  "mdm_binding strict; mdm_user_authenticate maybe;",
                  "mdm_user_authenticate"),
    "events-maxlen": ("mdm-server.conf", "mdm_binding strict;",
                      "mdm_binding strict; mdm_events_maxlen -5;",
                      "mdm_events_maxlen"),
}


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
             .replace("{PKI}", server.pki.dir)
             .replace("{REDISPORT}", str(server.redis.port)))


def test_example_config_ok(server, tmp_path):
    if server.name != "nginx":
        pytest.skip("nginx -t")
    run = str(tmp_path / "ok")
    conf = server.render(run)
    t = server.test_config(run, conf)
    assert t.returncode == 0, t.stderr
    assert "test is successful" in t.stderr


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config(case, server, tmp_path):
    if server.name != "nginx":
        pytest.skip("nginx -t")
    fname, old, new, directive = BROKEN[case]
    run = str(tmp_path / case)
    conf = render_variant(server, run, fname, subst(old, server),
                          subst(new, server))
    t = server.test_config(run, conf)
    assert t.returncode != 0, "nginx -t accepted %s:\n%s" % (new, t.stderr)
    assert re.search(re.escape(directive) + r"(?![A-Za-z_])", t.stderr), \
        t.stderr
    assert "[emerg]" in t.stderr, t.stderr
