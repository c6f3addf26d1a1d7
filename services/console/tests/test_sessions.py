"""Sessions and CSRF tokens: signed, bound to their session, expiring, and nothing without a token."""

from console.domain.sessions import SessionSigner

NOW = 1_800_000_000.0


def signer(token: str | None = "admin-token", hours: float = 8) -> SessionSigner:
    return SessionSigner(token, hours * 3600)


def test_a_session_reads_back_until_it_expires():
    s = signer()
    cookie = s.issue("sid1", NOW)
    assert s.read(cookie, NOW).session_id == "sid1"
    assert s.read(cookie, NOW + 8 * 3600 - 1) is not None
    assert s.read(cookie, NOW + 8 * 3600) is None


def test_forged_altered_or_malformed_cookies_are_no_session():
    s = signer()
    sid, expires, signature = s.issue("sid1", NOW).split(".")
    for cookie in (None, "", "abc", f"{sid}.{expires}", f"other.{expires}.{signature}",
                   f"{sid}.{int(expires) + 3600}.{signature}", f"{sid}.{expires}.{signature[:-1]}A", "a.b.c.d",
                   f"{sid}.-5.{signature}"):
        assert s.read(cookie, NOW) is None, cookie


def test_another_admin_token_ends_every_session():
    cookie = signer("old-token").issue("sid1", NOW)
    assert signer("new-token").read(cookie, NOW) is None


def test_no_admin_token_configured_lets_nobody_in():
    s = signer(None)
    assert not s.token_matches("")
    assert not s.token_matches("anything")
    assert s.read("a.9999999999.b", NOW) is None
    assert not s.csrf_ok("sid", "")
    assert not s.signin_ok("nonce", "")


def test_the_admin_token_must_match_exactly():
    s = signer()
    assert s.token_matches("admin-token")
    assert s.token_matches(" admin-token\n")  # pasted with whitespace
    for wrong in ("", "admin-toke", "admin-token2", "ADMIN-TOKEN"):
        assert not s.token_matches(wrong)


def test_csrf_tokens_belong_to_their_session():
    s = signer()
    token = s.csrf_token("sid1")
    assert s.csrf_ok("sid1", token)
    assert not s.csrf_ok("sid2", token)
    assert not s.csrf_ok("sid1", None)
    assert not s.csrf_ok("sid1", "")
    assert not s.csrf_ok("sid1", token[:-1])
    assert token != s.csrf_token("sid2")


def test_the_signin_token_belongs_to_its_nonce_and_is_no_csrf_token():
    s = signer()
    token = s.signin_token("nonce1")
    assert s.signin_ok("nonce1", token)
    assert not s.signin_ok("nonce2", token)
    assert not s.signin_ok(None, token)
    assert not s.csrf_ok("nonce1", token)  # purposes are signed apart
