"""Webhook secret rotation (the bridge's contract): several secrets may be active; the
secrets file is re-read when it changes (rename over it, or Kubernetes' symlink
swap) and on SIGHUP; secrets never reach a log."""

import os
import signal

import pytest

from bridgetest import event, new_secret
from proctest import wait_until


def _status(b, secret):
    return b.post(event("ITEM_UPDATE"), secret=secret).status


def _write_atomically(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_two_secrets_then_rotation_by_rename(bridges, topic, tmp_path):
    s1, s2 = new_secret(), new_secret()
    f = tmp_path / "secrets"
    f.write_text(f"{s1}\n{s2}\n")
    b = bridges(topic, secret=None, secrets_file=f, extra_secrets=[s1, s2])
    assert b.metrics().value("duro_bridge_secrets_active") == 2
    assert _status(b, s1) == 200
    assert _status(b, s2) == 200
    assert _status(b, new_secret()) == 401
    reloads = b.metrics().value("duro_bridge_secrets_reloads_total")

    _write_atomically(f, f"{s2}\n")
    wait_until(lambda: _status(b, s1) == 401, 15, "the removed secret to be refused (401)",
               interval=0.2)
    assert _status(b, s2) == 200
    m = b.metrics()
    assert m.value("duro_bridge_secrets_active") == 1
    assert m.value("duro_bridge_secrets_reloads_total") >= reloads + 1

    # and a new one added later is picked up too
    s3 = new_secret()
    b.secrets_.append(s3)
    _write_atomically(f, f"{s2}\n\n  {s3}  \n")
    wait_until(lambda: _status(b, s3) == 200, 15, "the added secret to be accepted", interval=0.2)
    assert _status(b, s2) == 200
    assert _status(b, s1) == 401


def test_sighup_rereads_secrets_file(bridges, topic, tmp_path):
    """An in-place rewrite that keeps size and mtime (invisible to a stat check)
    is picked up on SIGHUP."""
    s1, s2, s3 = new_secret(), new_secret(), new_secret()
    assert len(s1) == len(s3)
    f = tmp_path / "secrets"
    f.write_text(f"{s1}\n{s2}\n")
    st = os.stat(f)
    b = bridges(topic, secret=None, secrets_file=f, extra_secrets=[s1, s2, s3])
    assert _status(b, s1) == 200 and _status(b, s2) == 200
    assert _status(b, s3) == 401
    reloads = b.metrics().value("duro_bridge_secrets_reloads_total")

    with open(f, "r+") as fh:  # same inode, same size
        fh.write(f"{s3}\n{s2}\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    b.signal(signal.SIGHUP)
    wait_until(lambda: _status(b, s3) == 200, 15, "the secret written before SIGHUP to be accepted",
               interval=0.2)
    assert _status(b, s1) == 401
    assert _status(b, s2) == 200
    assert b.metrics().value("duro_bridge_secrets_reloads_total") >= reloads + 1
    assert b.proc.poll() is None, "SIGHUP must not stop the bridge"
    assert b.readyz().status == 200


def test_symlink_swap_like_kubernetes(bridges, topic, tmp_path):
    """dir/secrets -> ..data/secrets, ..data -> v1; the update swaps ..data to v2."""
    s1, s2 = new_secret(), new_secret()
    d = tmp_path / "secret-volume"
    (d / "v1").mkdir(parents=True)
    (d / "v2").mkdir()
    (d / "v1" / "secrets").write_text(f"{s1}\n")
    os.symlink("v1", d / "..data")
    os.symlink("..data/secrets", d / "secrets")
    b = bridges(topic, secret=None, secrets_file=d / "secrets", extra_secrets=[s1, s2])
    assert _status(b, s1) == 200
    assert _status(b, s2) == 401

    (d / "v2" / "secrets").write_text(f"{s2}\n")
    os.symlink("v2", d / "..data_tmp")
    os.replace(d / "..data_tmp", d / "..data")  # atomic swap, as the kubelet does
    wait_until(lambda: _status(b, s2) == 200, 15, "the swapped-in secret to be accepted",
               interval=0.2)
    assert _status(b, s1) == 401


def test_bad_secrets_file_keeps_old_secrets(bridges, topic, tmp_path):
    s1 = new_secret()
    f = tmp_path / "secrets"
    f.write_text(f"{s1}\n")
    b = bridges(topic, secret=None, secrets_file=f, extra_secrets=[s1])
    assert _status(b, s1) == 200
    _write_atomically(f, "\n   \n")  # no secret at all
    b.signal(signal.SIGHUP)
    b.wait_log(lambda r: r.get("level") in ("warn", "error") and "secret" in r.get("msg", ""),
               10, "a complaint about the empty secrets file")
    assert _status(b, s1) == 200
    assert b.metrics().value("duro_bridge_secrets_active") == 1


def test_env_secret_not_in_logs(bridges, topic):
    b = bridges(topic)
    assert _status(b, b.secrets_[0]) == 200
    assert b.secrets_[0] not in b.stderr_text()
    for r in b.logs():
        assert "raw" not in r


@pytest.mark.parametrize("reload_by", ["rename", "sighup"])
def test_reload_never_logs_secrets(bridges, topic, tmp_path, reload_by):
    s1, s2 = new_secret(), new_secret()
    f = tmp_path / "secrets"
    f.write_text(f"{s1}\n")
    b = bridges(topic, secret=None, secrets_file=f, extra_secrets=[s1, s2],
                DURO_LOG_LEVEL="debug")
    _write_atomically(f, f"{s2}\n")
    if reload_by == "sighup":
        b.signal(signal.SIGHUP)
    wait_until(lambda: _status(b, s2) == 200, 15, "the new secret", interval=0.2)
    text = b.stderr_text()
    assert s1 not in text and s2 not in text
