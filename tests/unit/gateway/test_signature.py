"""Stripe-Signature verification: only a fresh HMAC of this body with one of our secrets passes."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.signature import TOLERANCE_SECONDS, SignatureError, sign, verify_signature

NOW = 1_790_000_000
SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"
BODY = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'


def v1(body: bytes, secret: str, timestamp: int | str) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def test_a_valid_signature_passes() -> None:
    assert verify_signature(BODY, sign(BODY, SECRET, NOW), [SECRET], now=NOW) == NOW


def test_sign_is_stripes_scheme() -> None:
    assert sign(BODY, SECRET, NOW) == f"t={NOW},v1={v1(BODY, SECRET, NOW)}"


def test_wrong_secret_fails() -> None:
    with pytest.raises(SignatureError, match="no matching signature"):
        verify_signature(BODY, sign(BODY, "whsec_attacker", NOW), [SECRET], now=NOW)


def test_rotated_secrets_both_pass() -> None:
    for secret in (SECRET, OLD_SECRET):
        header = sign(BODY, secret, NOW)
        assert verify_signature(BODY, header, [SECRET, OLD_SECRET], now=NOW) == NOW
    with pytest.raises(SignatureError):
        verify_signature(BODY, sign(BODY, OLD_SECRET, NOW), [SECRET], now=NOW)


def test_tampered_body_fails() -> None:
    header = sign(BODY, SECRET, NOW)
    with pytest.raises(SignatureError):
        verify_signature(BODY.replace(b"evt_1", b"evt_2"), header, [SECRET], now=NOW)
    with pytest.raises(SignatureError):
        verify_signature(BODY + b" ", header, [SECRET], now=NOW)


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_fails(header: str | None) -> None:
    with pytest.raises(SignatureError, match="missing"):
        verify_signature(BODY, header, [SECRET], now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"v1={v1(BODY, SECRET, NOW)}",  # no timestamp
        f"t={NOW}",  # no signature
        f"t={NOW},v0={v1(BODY, SECRET, NOW)}",  # only another scheme
        f"t=abc,v1={v1(BODY, SECRET, NOW)}",
        f"t=-{NOW},v1={v1(BODY, SECRET, NOW)}",
        f"t={NOW},t={NOW},v1={v1(BODY, SECRET, NOW)}",
        f"t=١٢٣,v1={v1(BODY, SECRET, NOW)}",  # non-ASCII digits
        f"t={NOW},v1=é{v1(BODY, SECRET, NOW)}",
        f"t={NOW}.5,v1={v1(BODY, SECRET, NOW)}",
    ],
)
def test_malformed_headers_fail(header: str) -> None:
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, [SECRET], now=NOW)


@pytest.mark.parametrize("offset", [-TOLERANCE_SECONDS - 1, TOLERANCE_SECONDS + 1, -86_400, 86_400])
def test_old_and_future_timestamps_fail(offset: int) -> None:
    header = sign(BODY, SECRET, NOW + offset)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature(BODY, header, [SECRET], now=NOW)


@pytest.mark.parametrize("offset", [-TOLERANCE_SECONDS, 0, TOLERANCE_SECONDS])
def test_timestamps_within_the_tolerance_pass(offset: int) -> None:
    assert verify_signature(BODY, sign(BODY, SECRET, NOW + offset), [SECRET], now=NOW)


def test_any_of_several_v1_entries_passes() -> None:
    good = v1(BODY, SECRET, NOW)
    header = f"t={NOW},v1={'0' * 64},v0=ignored,v1={good},v1=zz"
    assert verify_signature(BODY, header, [SECRET], now=NOW) == NOW
    header = f" t={NOW} , v1={'0' * 64} , v1={v1(BODY, OLD_SECRET, NOW)} "
    assert verify_signature(BODY, header, [SECRET, OLD_SECRET], now=NOW) == NOW


def test_the_timestamp_is_signed_as_sent() -> None:
    padded = f"0{NOW}"
    assert verify_signature(BODY, f"t={padded},v1={v1(BODY, SECRET, padded)}", [SECRET], now=NOW)
    # A signature over the normalised number does not cover the text that was sent.
    with pytest.raises(SignatureError):
        verify_signature(BODY, f"t={padded},v1={v1(BODY, SECRET, NOW)}", [SECRET], now=NOW)


@given(header=st.text(), body=st.binary(max_size=64))
def test_arbitrary_headers_only_ever_fail_verification(header: str, body: bytes) -> None:
    try:
        verify_signature(body, header, [SECRET, OLD_SECRET], now=NOW)
    except SignatureError:
        return
    raise AssertionError(f"an unsigned header passed: {header!r}")


_entry = st.one_of(
    st.just(f"t={NOW}"),
    st.builds(lambda n: f"t={n}", st.integers(min_value=-(10**15), max_value=10**15)),
    st.just(f"v1={v1(BODY, 'whsec_other', NOW)}"),
    st.text(alphabet="tv01=,; \t\x00é", max_size=12),
    st.builds(lambda s: f"v1={s}", st.text(max_size=70)),
)


@given(entries=st.lists(_entry, max_size=8))
def test_header_shaped_strings_only_ever_fail_verification(entries: list[str]) -> None:
    with pytest.raises(SignatureError):
        verify_signature(BODY, ",".join(entries), [SECRET], now=NOW)


GOOD = v1(BODY, SECRET, NOW)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing Stripe-Signature header"),
        (f"t={NOW},t={NOW},v1={GOOD}", "malformed Stripe-Signature header"),
        # A second `t` whose value holds an "=" is still a second timestamp.
        (f"t={NOW},v1={GOOD},t==1", "malformed Stripe-Signature header"),
        (f"v1={GOOD}", "malformed Stripe-Signature header"),
        (f"t={NOW}", "no v1 signature in Stripe-Signature header"),
        (sign(BODY, SECRET, NOW - TOLERANCE_SECONDS - 1), "outside the tolerance"),
        (sign(BODY, "whsec_attacker", NOW), "no matching signature"),
    ],
)
def test_each_refusal_says_why(header: str | None, message: str) -> None:
    # The message is what the gateway logs; it must tell the cases apart.
    with pytest.raises(SignatureError) as refused:
        verify_signature(BODY, header, [SECRET], now=NOW)
    text = str(refused.value)
    assert text == message or text == f"Stripe-Signature timestamp {message}"


def test_entries_without_an_equals_sign_are_skipped() -> None:
    assert verify_signature(BODY, f"junk,t={NOW},v1={GOOD}", [SECRET], now=NOW) == NOW


def test_only_the_first_sixteen_signatures_are_tried() -> None:
    bogus = [f"v1={'0' * 64}"] * 15
    header = ",".join([f"t={NOW}", *bogus, f"v1={GOOD}"])
    assert verify_signature(BODY, header, [SECRET], now=NOW) == NOW
    with pytest.raises(SignatureError):
        verify_signature(
            BODY, header.replace(f"t={NOW}", f"t={NOW},v1={'1' * 64}"), [SECRET], now=NOW
        )


def test_a_timestamp_may_have_up_to_twelve_digits() -> None:
    twelve, thirteen = f"{NOW:012d}", f"{NOW:013d}"
    header = f"t={twelve},v1={v1(BODY, SECRET, twelve)}"
    assert verify_signature(BODY, header, [SECRET], now=NOW) == NOW
    with pytest.raises(SignatureError):
        verify_signature(BODY, f"t={thirteen},v1={v1(BODY, SECRET, thirteen)}", [SECRET], now=NOW)
