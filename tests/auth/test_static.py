"""The static authentication backend."""

import pytest

from anchor.auth import AuthenticationFailed, AuthResult
from anchor.auth.static import StaticAuthenticator


@pytest.fixture
def backend():
    return StaticAuthenticator(user="alice", secret="correct horse")


def test_right_credentials(backend):
    assert backend.authenticate("alice", "correct horse") == AuthResult(username="alice")


@pytest.mark.parametrize("user, secret", [
    ("alice", "wrong"), ("bob", "correct horse"), ("alice", ""), ("", ""), ("Alice", "correct horse"),
    ("alice", "correct horse "), ("alice", "correct hors"), ("al\u00efce", "correct horse"),
])
def test_wrong_credentials(backend, user, secret):
    with pytest.raises(AuthenticationFailed):
        backend.authenticate(user, secret)


def test_comparison_is_constant_time(monkeypatch):
    calls = []
    import hmac

    real = hmac.compare_digest
    monkeypatch.setattr("anchor.auth.static.hmac.compare_digest",
                        lambda a, b: calls.append((a, b)) or real(a, b))
    backend = StaticAuthenticator(user="alice", secret="s")
    with pytest.raises(AuthenticationFailed):
        backend.authenticate("mallory", "s")
    # Both values are compared with hmac.compare_digest, even when the user is wrong.
    assert calls == [(b"mallory", b"alice"), (b"s", b"s")]
