"""Which encoding an input file is in, and where it stops being valid in it.

A byte order mark decides (UTF-8, UTF-16 LE/BE, UTF-32); without one, the encoding asked for
(`--encoding cp1252`), else UTF-8. A workbook or a file with NUL bytes is refused with what to
do instead. An invalid byte is described by its offset and line, so that an administrator can
find it in an editor.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from batch.errors import InputFileError
from batch.io.opening import open_input

BLOCK = 1 << 20


# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WORKBOOK_SIGNATURES = (
    b"PK\x03\x04",  # .xlsx, .ods (zip)
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # .xls (OLE2 compound file)
)


def choose_encoding(path: Path, head: bytes, asked: str | None) -> str:
    if not head:
        raise InputFileError(path, "is empty (0 bytes); expected a header line")
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    if head.startswith(_WORKBOOK_SIGNATURES):
        raise InputFileError(path, "is not a CSV file: this looks like an Excel workbook; save it as .xlsx (Excel "
                                   "Workbook), which is read as it is, or as CSV UTF-8 (File > Save As > 'CSV UTF-8 "
                                   "(Comma delimited)')")
    if asked is not None:
        return _asked_encoding(path, asked)
    if b"\x00" in head and _looks_binary(head):
        # UTF-16/32 without a byte order mark, or binary data. A few NULs in a text file are
        # the rows' problem instead (the reader refuses them per cell, naming it).
        raise InputFileError(path, "is not a text CSV file (it holds NUL bytes); if it is UTF-16 without a byte "
                                   "order mark, give --encoding utf-16-le (or utf-16-be), or save it again as "
                                   "CSV UTF-8")
    return "utf-8"


_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in b"\t\n\r") + b"\x7f"


def _looks_binary(head: bytes) -> bool:
    """Many NULs (every other byte in UTF-16 text), or many control bytes of all kinds (an
    image, an archive): not a text file with a stray control character in a cell."""
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return head.count(b"\x00") * 8 > len(head) or controls * 32 > len(head)


# Codecs whose decoder insists on a byte order mark at the start (Python's "utf-16" and
# "utf-32" raise "stream does not start with BOM" otherwise); a file with the mark never
# gets here, since the mark decides first.
_NEEDS_BOM = {"utf-16": "utf-16-le (or utf-16-be)", "utf-32": "utf-32-le (or utf-32-be)"}


def _asked_encoding(path: Path, asked: str) -> str:
    """The codec `--encoding` names, if it can decode a text file."""
    try:
        info = codecs.lookup(asked)
    except LookupError:
        raise InputFileError(path, f"unknown encoding {asked!r}; try utf-8, cp1252 or latin-1") from None
    # rot13, base64, zlib... are codecs too, but not text encodings (bytes to str).
    if not getattr(info, "_is_text_encoding", True):
        raise InputFileError(path, f"{asked!r} is not a text encoding; try utf-8, cp1252 or latin-1")
    if info.name in _NEEDS_BOM:
        raise InputFileError(path, f"has no byte order mark, which --encoding {asked} needs; give the byte order: "
                                   f"--encoding {_NEEDS_BOM[info.name]}")
    # idna, undefined...: text codecs in name, which cannot read a file's bytes (they refuse
    # any byte they cannot take with UnicodeError, not saying where, whatever the handler).
    try:
        codecs.getincrementaldecoder(info.name)("replace").decode(b"a,\xe9\xff\r\n", final=True)
    except (UnicodeError, TypeError, ValueError):
        raise InputFileError(path, f"{asked!r} cannot read a file's text; try utf-8, cp1252 or latin-1") from None
    return info.name


def decode_head(path: Path, head: bytes, codec: str, *, complete: bool) -> str:
    decoder = codecs.getincrementaldecoder(codec)("strict")
    state = decoder.getstate()
    try:
        return decoder.decode(head, final=complete)
    except UnicodeDecodeError as exc:
        raise InputFileError(path, _describe_decode_error(codec, exc, fed=len(head), lines_before=0,
                                                          state=state)) from exc


def decode_problem(path: Path, codec: str, *, rows_read: int | None = None, block_size: int = BLOCK) -> str | None:
    """Scan the file for its first byte invalid in `codec`; describe it, or None if all is valid."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    fed = 0
    lines_before = 0
    with open_input(path) as raw:
        while True:
            block = raw.read(block_size)
            fed += len(block)
            state = decoder.getstate()
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                message = _describe_decode_error(codec, exc, fed=fed, lines_before=lines_before, state=state)
                if rows_read:
                    message += f"; reading stopped after row {rows_read}"
                return message
            lines_before += text.count("\n")
            if not block:
                return None


def _describe_decode_error(codec: str, exc: UnicodeDecodeError, *, fed: int, lines_before: int,
                           state: tuple[bytes, int]) -> str:
    # `exc.object` is what the codec was decoding when it failed: the bytes it held back plus
    # the block, or the block without its BOM. Either way it ends where the `fed` bytes end.
    position = fed - len(exc.object) + exc.start
    # Decode the valid part again, from the decoder's state before the block (UTF-16 keeps
    # its byte order there), to count the lines before the bad byte.
    recount = codecs.getincrementaldecoder(codec)("replace")
    recount.setstate((b"", state[1]))
    line = lines_before + recount.decode(exc.object[: exc.start], final=True).count("\n") + 1
    where = f"byte 0x{exc.object[exc.start:exc.start + 1].hex()} at offset {position}, line {line}"
    if codec in ("utf-8", "utf-8-sig"):
        return (f"is not valid UTF-8 ({where}); if Excel saved it as 'CSV (Windows)', try --encoding cp1252, "
                f"or save it again as CSV UTF-8")
    return f"is not valid {_codec_label(codec)} ({where}); check --encoding (latin-1 accepts any byte)"


def _codec_label(codec: str) -> str:
    return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-32": "UTF-32"}.get(codec, codec)


__all__ = ["BLOCK", "choose_encoding", "decode_head", "decode_problem"]
