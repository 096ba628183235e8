"""URL redaction: keys never reach a message, whatever shape the provider's URL has."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postmortem.redact import MASK, redact_text, redact_url, redact_urls_in, secret_parts, strip_url

INFURA_KEY = "0123456789abcdef0123456789abcdef"
ALCHEMY_KEY = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
QUICKNODE_TOKEN = "4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2"
ANKR_KEY = "ab" * 32

CASES = [
    # (url, expected, secrets that must not survive)
    (f"https://mainnet.infura.io/v3/{INFURA_KEY}", "https://mainnet.infura.io/v3/***", [INFURA_KEY]),
    (f"wss://mainnet.infura.io/ws/v3/{INFURA_KEY}", "wss://mainnet.infura.io/ws/v3/***", [INFURA_KEY]),
    (f"https://eth-mainnet.g.alchemy.com/v2/{ALCHEMY_KEY}", "https://eth-mainnet.g.alchemy.com/v2/***", [ALCHEMY_KEY]),
    # Alchemy's public demo key is not a secret and stays readable.
    ("https://eth-mainnet.g.alchemy.com/v2/demo", "https://eth-mainnet.g.alchemy.com/v2/demo", []),
    (f"https://snowy-wild-dawn.quiknode.pro/{QUICKNODE_TOKEN}/", "https://snowy-wild-dawn.quiknode.pro/***/", [QUICKNODE_TOKEN]),
    (f"https://rpc.ankr.com/eth/{ANKR_KEY}", "https://rpc.ankr.com/eth/***", [ANKR_KEY]),
    ("https://nd-123-456-789.p2pify.com/5b1b3e2e6f0a4c8d9e7f6a5b4c3d2e1f", "https://nd-123-456-789.p2pify.com/***", ["5b1b3e2e6f0a4c8d9e7f6a5b4c3d2e1f"]),
    ("https://eth-mainnet.blastapi.io/0b2a5c1e-7d3f-4a9b-8c6e-1f2d3e4a5b6c", "https://eth-mainnet.blastapi.io/***", ["0b2a5c1e-7d3f-4a9b-8c6e-1f2d3e4a5b6c"]),
    ("https://eth-mainnet.gateway.pokt.network/v1/lb/62b4c3d2e1f0a9b8c7d6e5f4", "https://eth-mainnet.gateway.pokt.network/v1/lb/***", ["62b4c3d2e1f0a9b8c7d6e5f4"]),
    ("https://lb.drpc.org/ogrpc?network=ethereum&dkey=AkZ9x_secretValue-123", "https://lb.drpc.org/ogrpc?network=***&dkey=***", ["AkZ9x_secretValue-123"]),
    ("https://node.example.com/rpc?apikey=s3cr3t", "https://node.example.com/rpc?apikey=***", ["s3cr3t"]),
    ("https://node.example.com/?TOKENONLY12345", "https://node.example.com/?***", ["TOKENONLY12345"]),
    ("https://alice:hunter2@archive.example.com:8545/", "https://***:***@archive.example.com:8545/", ["alice", "hunter2"]),
    ("http://bob@10.0.0.5:8545", "http://***@10.0.0.5:8545", ["bob"]),
    ("https://node.example.com/rpc#access_token=abcdef", "https://node.example.com/rpc#***", ["access_token=abcdef"]),
    ("https://user:p%40ss@[2001:db8::1]:8545/eth/mainnet", "https://***:***@[2001:db8::1]:8545/eth/mainnet", ["p%40ss"]),
    # Base64-ish key without digits, and one with padding.
    ("https://rpc.example.org/KeyWithoutDigitsButMixedCase", "https://rpc.example.org/***", ["KeyWithoutDigitsButMixedCase"]),
    ("https://rpc.example.org/dGhpc2lzYWtleQ==", "https://rpc.example.org/***", ["dGhpc2lzYWtleQ=="]),
    # Nothing secret: left as is.
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545", []),
    ("http://localhost:8545/", "http://localhost:8545/", []),
    ("https://ethereum-rpc.publicnode.com", "https://ethereum-rpc.publicnode.com", []),
    ("https://rpc.example.org/eth/mainnet/archive", "https://rpc.example.org/eth/mainnet/archive", []),
    # Malformed ports and scheme-less input must not raise, and must not leak.
    (f"https://mainnet.infura.io:notaport/v3/{INFURA_KEY}", "https://mainnet.infura.io:notaport/v3/***", [INFURA_KEY]),
    (f"mainnet.infura.io/v3/{INFURA_KEY}", "mainnet.infura.io/v3/***", [INFURA_KEY]),
]


@pytest.mark.parametrize("url, expected, secrets", CASES, ids=[c[1] for c in CASES])
def test_redact_url_shapes(url, expected, secrets):
    out = redact_url(url)
    assert out == expected
    for secret in secrets:
        assert secret not in out


def test_redact_url_empty_and_none():
    assert redact_url("") == ""
    assert redact_url(None) == ""


def test_secret_parts_lists_what_is_hidden():
    parts = secret_parts(f"https://u:pw@h.example/v3/{INFURA_KEY}?k=v1")
    assert {"u", "pw", INFURA_KEY, "v1"} <= set(parts)
    assert secret_parts("http://127.0.0.1:8545") == []


def test_redact_text_scrubs_url_and_pieces():
    url = f"https://mainnet.infura.io/v3/{INFURA_KEY}"
    text = (
        f"HTTPSConnectionPool(host='mainnet.infura.io', port=443): Max retries exceeded with url: "
        f"/v3/{INFURA_KEY} (Caused by NewConnectionError); full url was {url}"
    )
    out = redact_text(text, url)
    assert INFURA_KEY not in out
    assert "/v3/***" in out and "https://mainnet.infura.io/v3/***" in out
    assert "mainnet.infura.io" in out  # the host still helps the reader


def test_redact_text_percent_encoded_and_decoded_secret():
    url = "https://user:p%40ssw0rd@node.example.com/rpc?key=a%2Fb%2Bc123"
    text = "login p@ssw0rd failed; also p%40ssw0rd; key a/b+c123 and a%2Fb%2Bc123"
    out = redact_text(text, url)
    for leaked in ("p@ssw0rd", "p%40ssw0rd", "a/b+c123", "a%2Fb%2Bc123"):
        assert leaked not in out


def test_redact_text_leaves_ordinary_words():
    url = "https://node.example.com/rpc?network=eth"
    out = redact_text("ethereum node at https://node.example.com/rpc?network=eth failed", url)
    assert out == "ethereum node at https://node.example.com/rpc?network=*** failed"


def test_redact_text_without_url_or_text():
    assert redact_text("", "https://x.example/v3/" + INFURA_KEY) == ""
    assert redact_text("plain", "") == "plain"


_key = st.text(alphabet=string.ascii_letters + string.digits, min_size=20, max_size=64).filter(
    lambda s: any(c.isdigit() for c in s) and any(c.isalpha() for c in s)
)


@settings(max_examples=200, deadline=None)
@given(key=_key, host=st.sampled_from(["mainnet.infura.io", "eth.example.com:8443", "10.1.2.3:8545"]),
       shape=st.sampled_from(["path_v3", "path_bare", "query", "userinfo", "password"]))
def test_random_keys_never_survive(key, host, shape):
    url = {
        "path_v3": f"https://{host}/v3/{key}",
        "path_bare": f"https://{host}/{key}/",
        "query": f"https://{host}/rpc?apiKey={key}&x=1",
        "userinfo": f"https://{key}@{host}/",
        "password": f"https://user:{key}@{host}/",
    }[shape]
    out = redact_url(url)
    assert key not in out
    assert host in out
    assert MASK in out
    message = f"request to {url} failed: url: /{key} and {key[:-1]}"  # a prefix is not the key
    scrubbed = redact_text(message, url)
    assert key not in scrubbed


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_redact_url_never_raises(text):
    assert isinstance(redact_url(text), str)
    assert isinstance(redact_text(text, text), str)


# --- what is stored: the coarse form, and every URL in nested data -----------------------------------


def test_url_secrets_are_stripped_as_a_last_line_of_defence():
    assert strip_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert strip_url("https://mainnet.infura.io/v3/abc") == "https://mainnet.infura.io/***"
    assert strip_url("https://node.example/?key=abc") == "https://node.example/***"
    assert strip_url("https://node.example:99999999/key") == "***"


def test_redact_urls_in_nested_data_and_sentences():
    data = {"rpc_url": f"https://mainnet.infura.io/v3/{INFURA_KEY}", "n": 3, "none": None,
            "nested": [("wss://u:p@h:8546",), {"note": f"fetched from https://rpc.ankr.com/eth/{ANKR_KEY} twice"}],
            "plain": "no url here, just a :// in words"}
    assert redact_urls_in(data) == {
        "rpc_url": "https://mainnet.infura.io/v3/***", "n": 3, "none": None,
        "nested": [["wss://***:***@h:8546"], {"note": "fetched from https://rpc.ankr.com/eth/*** twice"}],
        "plain": "no url here, just a :// in words"}
    stored = redact_urls_in(data, strip_url)
    assert stored["rpc_url"] == "https://mainnet.infura.io/***"
    assert stored["nested"] == [["wss://h:8546/***"], {"note": "fetched from https://rpc.ankr.com/*** twice"}]
    assert INFURA_KEY not in repr(stored) and ANKR_KEY not in repr(stored) and "u:p" not in repr(stored)
