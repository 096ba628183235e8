"""Aave revisions: an unknown POOL_REVISION is refused in one sentence, and revisions compare as numbers."""

from __future__ import annotations

import pytest

from postmortem.errors import PostmortemError
from postmortem.ingest.discovery import POOL_REVISIONS, aave_revision_of, revision_key


def test_revisions_compare_as_numbers():
    assert revision_key("3.10") > revision_key("3.2")  # as strings, "3.10" < "3.2"
    assert revision_key("3.2") >= (3, 2) and not revision_key("3.1") >= (3, 2)
    assert sorted(["3.10", "3.2", "3.0", "3.6"], key=revision_key) == ["3.0", "3.2", "3.6", "3.10"]


def test_known_pool_revisions_map_to_their_release():
    assert aave_revision_of("0xpool", 10) == "3.6"
    assert aave_revision_of("0xpool", 1) == "3.0"


@pytest.mark.parametrize("pool_revision", [0, 11, 99])
def test_unknown_pool_revision_is_refused_in_one_sentence(pool_revision):
    assert pool_revision not in POOL_REVISIONS
    with pytest.raises(PostmortemError) as exc:
        aave_revision_of("0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2", pool_revision)
    msg = str(exc.value)
    assert f"POOL_REVISION {pool_revision}" in msg and "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2" in msg
    assert "\n" not in msg


def test_a_revision_that_is_no_number_is_refused():
    with pytest.raises(PostmortemError, match="MAJOR.MINOR"):
        revision_key("v3-six")
