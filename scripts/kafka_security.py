"""The certificate authority and the SASL/ACL setup of a --secure test cluster
(scripts/kafka_cluster.py start --secure): certificates made with openssl,
users and passwords, and the broker properties for the TLS and SASL
listeners with ACLs on. kafka_cluster.py imports it; it has no CLI.
"""

import os
import secrets
import subprocess
import sys


def run_quiet(cmd):
    out = subprocess.run(cmd, capture_output=True, check=False)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed:\n{out.stdout.decode(errors='replace')}"
                 f"{out.stderr.decode(errors='replace')}")


def make_tls(tls_dir):
    """A CA, a CA that signed nothing here, the broker's certificates (one for
    localhost/127.0.0.1, one for another name) in PKCS12 keystores, and a
    client certificate with an encrypted PEM key. Returns the secrets."""
    os.makedirs(tls_dir)
    f = lambda name: os.path.join(tls_dir, name)
    sec = {"keystore_password": secrets.token_hex(12),
           "client_key_password": "keypw-" + secrets.token_hex(12)}
    for ca in ("ca", "wrong-ca"):
        run_quiet(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
                   "-keyout", f(ca + ".key"), "-out", f(ca + ".pem"),
                   "-subj", f"/CN=dispatch-kafka test {ca}"])

    def leaf(name, subject, san, key_password=None):
        key_args = (["-aes256", "-pass", "pass:" + key_password] if key_password else [])
        run_quiet(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                   "-out", f(name + ".key")] + key_args)
        run_quiet(["openssl", "req", "-new", "-key", f(name + ".key"), "-out", f(name + ".csr"),
                   "-subj", subject] + (["-passin", "pass:" + key_password] if key_password else []))
        with open(f(name + ".ext"), "w") as ext:
            ext.write(f"subjectAltName={san}\n")
        run_quiet(["openssl", "x509", "-req", "-in", f(name + ".csr"), "-CA", f("ca.pem"),
                   "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "7",
                   "-extfile", f(name + ".ext"), "-out", f(name + ".pem")])

    for name, san in (("broker", "DNS:localhost,IP:127.0.0.1"),
                      ("broker-other", "DNS:kafka.invalid")):
        leaf(name, f"/CN={san.split(',')[0][4:]}", san)
        run_quiet(["openssl", "pkcs12", "-export", "-in", f(name + ".pem"),
                   "-inkey", f(name + ".key"), "-certfile", f("ca.pem"), "-name", "broker",
                   "-out", f(name + ".p12"), "-passout", "pass:" + sec["keystore_password"]])
    leaf("client", "/CN=dispatch-client", "DNS:dispatch-client", sec["client_key_password"])
    return sec


def secure_properties(node, tls_dir, sec):
    ks = lambda name: {"ssl.keystore.location": os.path.join(tls_dir, name + ".p12"),
                       "ssl.keystore.type": "PKCS12",
                       "ssl.keystore.password": sec["keystore_password"],
                       "ssl.key.password": sec["keystore_password"]}
    props = {
        "listeners": (f"PLAINTEXT://127.0.0.1:{node['port']},"
                      f"CONTROLLER://127.0.0.1:{node['controller_port']},"
                      f"SSL://127.0.0.1:{node['ssl_port']},"
                      f"SASL_SSL://127.0.0.1:{node['sasl_ssl_port']},"
                      f"SSL_ALT://127.0.0.1:{node['ssl_alt_port']}"),
        "advertised.listeners": (f"PLAINTEXT://127.0.0.1:{node['port']},"
                                 f"SSL://localhost:{node['ssl_port']},"
                                 f"SASL_SSL://localhost:{node['sasl_ssl_port']},"
                                 f"SSL_ALT://127.0.0.1:{node['ssl_alt_port']}"),
        "listener.security.protocol.map": ("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,"
                                           "SASL_SSL:SASL_SSL,SSL_ALT:SSL"),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "listener.name.sasl_ssl.plain.sasl.jaas.config":
            ("org.apache.kafka.common.security.plain.PlainLoginModule required "
             f'user_{sec["plain_user"]}="{sec["plain_password"]}" '
             f'user_{sec["acl_less_user"]}="{sec["acl_less_password"]}" '
             f'user_{sec["limited_user"]}="{sec["limited_password"]}";'),
        # ACLs on: the plaintext and SSL listeners (principal ANONYMOUS: the
        # helpers, the controller) and the two SASL users are super users;
        # acl_less_user may log in but has no ACL at all; limited_user gets
        # the ACLs that a test grants it (over the plaintext listener).
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:ANONYMOUS;User:{sec['scram_user']};User:{sec['plain_user']}",
    }
    for listener, name in (("ssl", "broker"), ("sasl_ssl", "broker"), ("ssl_alt", "broker-other")):
        for k, v in ks(name).items():
            props[f"listener.name.{listener}.{k}"] = v
    return props


def setup(node, cluster_dir):
    """Certificates (in cluster_dir/tls), users and passwords for the one node
    of a --secure cluster, whose ssl_port, sasl_ssl_port and ssl_alt_port are
    set. Returns the node's extra server properties, the extra arguments of
    its storage format (the SCRAM user, made there) and what cluster.env
    tells the tests (listeners, files, credentials)."""
    tls_dir = os.path.join(cluster_dir, "tls")
    sec = make_tls(tls_dir)
    sec.update(scram_user="alice", scram_password="scram-" + secrets.token_hex(12),
               plain_user="bob", plain_password="plain-" + secrets.token_hex(12),
               acl_less_user="carol", acl_less_password="acl-less-" + secrets.token_hex(12),
               limited_user="dave", limited_password="limited-" + secrets.token_hex(12))
    extra = secure_properties(node, tls_dir, sec)
    format_extra = ["--add-scram",
                    f"SCRAM-SHA-512=[name={sec['scram_user']},password={sec['scram_password']}]"]
    env = {
        "ssl_bootstrap": f"localhost:{node['ssl_port']}",
        "sasl_ssl_bootstrap": f"localhost:{node['sasl_ssl_port']}",
        "ssl_alt_bootstrap": f"127.0.0.1:{node['ssl_alt_port']}",
        "ca": os.path.join(tls_dir, "ca.pem"),
        "wrong_ca": os.path.join(tls_dir, "wrong-ca.pem"),
        "client_cert": os.path.join(tls_dir, "client.pem"),
        "client_key": os.path.join(tls_dir, "client.key"),
        "client_key_password": sec["client_key_password"],
        "scram_user": sec["scram_user"], "scram_password": sec["scram_password"],
        "plain_user": sec["plain_user"], "plain_password": sec["plain_password"],
        "acl_less_user": sec["acl_less_user"], "acl_less_password": sec["acl_less_password"],
        "limited_user": sec["limited_user"], "limited_password": sec["limited_password"],
    }
    return extra, format_extra, env
