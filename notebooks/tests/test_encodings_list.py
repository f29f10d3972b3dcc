"""schemas/encodings.txt, the codecs pipectl validate accepts, against this Python's codecs.

The list is the one place the Go side learns which `encoding` values the notebooks can decode with:
every name in it must be a text codec here, and every text-codec alias Python knows must be in it.
Regenerate with PIPECTL_UPDATE=1 (then review the diff).
"""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import os
import pkgutil
from pathlib import Path

LIST = Path(__file__).resolve().parents[2] / "schemas" / "encodings.txt"

HEADER = """\
# Text encodings (Python codecs) that a stage's `encoding` parameter may name, normalised as pipectl
# compares them: lower case, each run of characters other than letters, digits and '.' as one '_'.
# Generated from Python's encodings aliases and modules, keeping codecs that decode bytes to text;
# checked by notebooks/tests/test_encodings_list.py (PIPECTL_UPDATE=1 regenerates it).
"""


def normalize(name: str) -> str:
    """What pipectl does to a name before looking it up (engine/spec/encoding.go)."""
    return encodings.normalize_encoding(name.lower())


def is_text_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
        "a".encode(name)
        b"".decode(name)
    except (LookupError, UnicodeError):
        return False
    return True


def python_text_codecs() -> set[str]:
    aliases = encodings.aliases.aliases
    names = set(aliases) | set(aliases.values())
    names |= {m.name for m in pkgutil.iter_modules(encodings.__path__)}
    return {normalize(n) for n in names if is_text_codec(n)}


def listed() -> list[str]:
    lines = LIST.read_text(encoding="utf-8").splitlines()
    return [ln for ln in lines if ln and not ln.startswith("#")]


def test_regenerate_or_compare() -> None:
    if os.environ.get("PIPECTL_UPDATE") == "1":
        LIST.write_text(HEADER + "".join(n + "\n" for n in sorted(python_text_codecs())), encoding="utf-8")
    names = listed()
    assert names == sorted(set(names)), "keep encodings.txt sorted and without repeats"
    missing = sorted(python_text_codecs() - set(names))
    assert not missing, f"Python knows text codecs encodings.txt lacks: {missing} (PIPECTL_UPDATE=1)"


def test_every_listed_name_decodes_here() -> None:
    unknown = [n for n in listed() if not is_text_codec(n)]
    assert not unknown, f"encodings.txt lists names this Python cannot decode with: {unknown}"


def test_spellings_people_write_normalise_into_the_list() -> None:
    names = set(listed())
    spellings = ["UTF-8", "utf8", "Latin-1", "latin_1", "ISO-8859-15", "cp1252", "Windows-1252", "utf-8-sig"]
    for spelling in spellings:
        assert is_text_codec(spelling), spelling
        assert normalize(spelling) in names, spelling
    for refused in ["utf-99", "base64", "rot13", "zlib", "undefined"]:
        assert normalize(refused) not in names, refused
