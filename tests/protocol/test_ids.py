from __future__ import annotations

import unicodedata

import pytest

from tcp_server.protocol import MAX_ID_LENGTH, InvalidId, id_key, is_valid_id, normalize_id

VALID = ["alice", "Bob_1", "김철수", "a" * MAX_ID_LENGTH, "é", "x.y-z", "😀"]
INVALID = ["", "a b", "a#b", "tab\tx", "nl\n", "a" * (MAX_ID_LENGTH + 1), "\u200bzero", "rtl\u202e",
           "nb\u00a0sp", "ctl\x01", "del\x7f", "ideo\u3000space"]


@pytest.mark.parametrize("raw", VALID)
def test_valid_ids(raw: str) -> None:
    assert normalize_id(raw) == unicodedata.normalize("NFC", raw)
    assert is_valid_id(raw)


@pytest.mark.parametrize("raw", INVALID, ids=repr)
def test_invalid_ids(raw: str) -> None:
    with pytest.raises(InvalidId):
        normalize_id(raw)
    assert not is_valid_id(raw)


def test_nfc_normalisation_counts_length_after_nfc() -> None:
    decomposed = "e\u0301" * MAX_ID_LENGTH  # 64 code points, 32 after NFC
    assert normalize_id(decomposed) == "é" * MAX_ID_LENGTH


def test_uniqueness_key_is_casefolded() -> None:
    assert id_key("Alice") == id_key("ALICE") == id_key("alice")
    assert id_key(normalize_id("Stra\u00dfe")) == id_key("STRASSE")
    assert id_key(normalize_id("e\u0301")) == id_key(normalize_id("\u00e9"))
