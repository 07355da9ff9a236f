"""Optional TLS on the webhook listener (the bridge's contract): a self-signed certificate
made with the openssl CLI; a client trusting exactly that certificate gets 200."""

import http.client
import shutil
import ssl
import subprocess

import pytest

from bridgetest import body_of, event
from proctest import http_request
from kafkatest import read_at


@pytest.fixture
def self_signed(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, timeout=60)
    return cert, key


def test_tls_webhook_accepted(broker, bridges, topic, self_signed):
    cert, key = self_signed
    b = bridges(topic, DURO_BRIDGE_TLS_CERT=cert, DURO_BRIDGE_TLS_KEY=key)
    ctx = ssl.create_default_context(cafile=str(cert))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    b.tls_context = ctx
    p = event("ITEM_UPDATE")
    r = b.post(p)
    assert r.status == 200, r
    ans = r.json()
    rec = read_at(broker.bootstrap, topic, ans["partition"], ans["offset"], timeout=5)
    assert rec.value == body_of(p)
    # refusals work over TLS too
    assert b.post(p, sign_=False).status == 401


def test_tls_listener_refuses_plain_http(bridges, topic, self_signed):
    cert, key = self_signed
    b = bridges(topic, DURO_BRIDGE_TLS_CERT=cert, DURO_BRIDGE_TLS_KEY=key)
    try:
        r = http_request(b.port, "POST", "/webhooks/duro", body=b"{}", timeout=5)
    except (OSError, http.client.HTTPException):
        return  # no plain-text HTTP exchange on the TLS port
    pytest.fail(f"plain HTTP on the TLS listener got an answer: {r!r}")


def test_tls_untrusted_client_fails_handshake(bridges, topic, self_signed):
    cert, key = self_signed
    b = bridges(topic, DURO_BRIDGE_TLS_CERT=cert, DURO_BRIDGE_TLS_KEY=key)
    b.tls_context = ssl.create_default_context()  # system CAs only: must not trust it
    with pytest.raises(ssl.SSLError):
        b.post(event("ITEM_UPDATE"))
