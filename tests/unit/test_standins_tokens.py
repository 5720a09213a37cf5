"""Stand-in SSO tokens: HS256, JWT-shaped, with expiry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govops.lab.standins.tokens import TokenError, sign, verify

KEY = b"k" * 32
claims_st = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(lambda k: k != "exp"),
    st.one_of(st.text(max_size=20), st.integers(), st.booleans()),
    max_size=5,
)


@given(claims_st, st.integers(min_value=1, max_value=10**9))
def test_a_signed_token_verifies_to_its_claims(claims: dict[str, object], exp: int) -> None:
    token = sign({**claims, "exp": exp}, KEY)
    assert verify(token, KEY, now=exp - 1) == {**claims, "exp": exp}


def test_expired_token_is_refused() -> None:
    token = sign({"sub": "046099001234", "exp": 100}, KEY)
    with pytest.raises(TokenError, match="expired"):
        verify(token, KEY, now=100)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
        lambda t: t.split(".")[0] + ".eyJleHAiOjk5OTk5OTk5OTl9." + t.split(".")[2],  # claims
        lambda t: t.replace(".", "", 1),  # shape
        lambda t: "",
    ],
)
def test_tampered_token_is_refused(mangle: object) -> None:
    token = sign({"sub": "x", "exp": 10**10}, KEY)
    with pytest.raises(TokenError):
        verify(mangle(token), KEY, now=0)  # type: ignore[operator]


def test_token_signed_with_another_key_is_refused() -> None:
    with pytest.raises(TokenError, match="signature"):
        verify(sign({"exp": 10**10}, b"other"), KEY, now=0)
