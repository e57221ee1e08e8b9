"""Byte-level walk of an encoded DICOM data set: proves every element fits inside the file.

pydicom stops quietly at the end of the buffer inside an undefined-length sequence, and it keeps a
value that is shorter than its declared length, so a truncated upload can parse into a plausible
but incomplete data set. This walker reads only tags, VRs and lengths (never values) and raises
`EncodingError` with the first place where the encoding and the bytes disagree.
"""

from __future__ import annotations

import struct

from pydicom.datadict import dictionary_VR

UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
# Explicit VRs whose length field is 4 bytes (after 2 reserved bytes), PS3.5 7.1.2.
_LONG_LENGTH_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
# Real data sets nest a handful of levels; a deep stack is an attack on the recursion, not imaging data.
MAX_NESTING = 32


class EncodingError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def format_tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def file_meta_end(buffer: bytes) -> int:
    """Offset of the first data set byte after the Part-10 preamble, 'DICM' and group 0002."""
    position = 132
    while position + 8 <= len(buffer):
        group = struct.unpack_from("<H", buffer, position)[0]
        if group != 0x0002:
            return position
        vr = buffer[position + 4 : position + 6]
        if vr in _LONG_LENGTH_VRS:
            if position + 12 > len(buffer):
                break
            length = struct.unpack_from("<I", buffer, position + 8)[0]
            position += 12
        else:
            length = struct.unpack_from("<H", buffer, position + 6)[0]
            position += 8
        if length == UNDEFINED_LENGTH or position + length > len(buffer):
            raise EncodingError("truncated or corrupt file meta information (group 0002)")
        position += length
    if position == len(buffer):
        return position
    raise EncodingError("truncated: the file ends inside the file meta information (group 0002)")


def check_encoding(buffer: bytes, *, offset: int, implicit_vr: bool, little_endian: bool) -> None:
    """Walk the data set that starts at `offset`; raise EncodingError where the bytes run out.

    Like pydicom, a data set declared explicit whose first element carries no VR (a known writer
    bug) is walked as implicit VR.
    """
    first_vr = buffer[offset + 4 : offset + 6]
    if not implicit_vr and len(first_vr) == 2 and not (first_vr.isalpha() and first_vr.isupper()):
        implicit_vr = True
    _Walker(buffer, implicit_vr=implicit_vr, little_endian=little_endian).data_set(
        offset, len(buffer), depth=0, delimited=False
    )


class _Walker:
    def __init__(self, buffer: bytes, *, implicit_vr: bool, little_endian: bool) -> None:
        self.buffer = buffer
        self.implicit_vr = implicit_vr
        self.byte_order = "<" if little_endian else ">"

    def _tag(self, position: int) -> int:
        group, element = struct.unpack_from(self.byte_order + "HH", self.buffer, position)
        return group << 16 | element

    def _uint32(self, position: int) -> int:
        return struct.unpack_from(self.byte_order + "I", self.buffer, position)[0]

    def data_set(self, position: int, end: int, *, depth: int, delimited: bool) -> int:
        while position < end:
            if end - position < 8:
                if depth == 0 and not delimited and not self.buffer[position:end].strip(b"\x00"):
                    return end  # a few bytes of zero padding after the last element are harmless
                raise EncodingError(f"truncated: {end - position} stray bytes at offset {position}")
            tag = self._tag(position)
            if tag == ITEM_DELIMITER:
                if delimited:
                    return position + 8
                raise EncodingError(f"corrupt: unexpected item delimiter at offset {position}")
            position = self._element(position, end, tag, depth)
        if delimited:
            raise EncodingError("truncated: the file ends inside a sequence item")
        return position

    def _element(self, position: int, end: int, tag: int, depth: int) -> int:
        vr = None
        if self.implicit_vr:
            length, value_at = self._uint32(position + 4), position + 8
        else:
            vr = self.buffer[position + 4 : position + 6]
            if vr in _LONG_LENGTH_VRS:
                if end - position < 12:
                    raise EncodingError(f"truncated: the file ends inside element {format_tag(tag)}")
                length, value_at = self._uint32(position + 8), position + 12
            elif len(vr) == 2 and vr.isalpha() and vr.isupper():
                length = struct.unpack_from(self.byte_order + "H", self.buffer, position + 6)[0]
                value_at = position + 8
            else:
                raise EncodingError(
                    f"corrupt: element {format_tag(tag)} at offset {position} has no valid VR"
                )
        if length == UNDEFINED_LENGTH:
            if vr in (b"OB", b"OW") or (vr is None and tag == 0x7FE00010):
                return self._fragments(value_at, end, tag)
            if vr == b"UN":
                # PS3.5 6.2.2: an undefined-length UN holds an implicit VR little endian sequence.
                inner = _Walker(self.buffer, implicit_vr=True, little_endian=True)
                return inner._sequence(value_at, end, tag, depth=depth + 1, defined=False)
            if vr in (None, b"SQ"):
                return self._sequence(value_at, end, tag, depth=depth + 1, defined=False)
            raise EncodingError(f"corrupt: element {format_tag(tag)} has an undefined length")
        if value_at + length > end:
            raise EncodingError(
                f"truncated: element {format_tag(tag)} declares {length} bytes but only "
                f"{max(end - value_at, 0)} remain"
            )
        if vr == b"SQ" or (vr is None and _is_sequence(tag)):
            self._sequence(value_at, value_at + length, tag, depth=depth + 1, defined=True)
        return value_at + length

    def _sequence(self, position: int, end: int, tag: int, *, depth: int, defined: bool) -> int:
        if depth > MAX_NESTING:
            raise EncodingError(f"corrupt: sequences nested deeper than {MAX_NESTING} levels")
        while True:
            if defined and position == end:
                return position
            if end - position < 8:
                raise EncodingError(f"truncated: sequence {format_tag(tag)} ends without its delimiter")
            item_tag, length = self._tag(position), self._uint32(position + 4)
            if item_tag == SEQUENCE_DELIMITER:
                return position + 8
            if item_tag != ITEM:
                raise EncodingError(
                    f"corrupt: sequence {format_tag(tag)} holds a non-item at offset {position}"
                )
            if length == UNDEFINED_LENGTH:
                position = self.data_set(position + 8, end, depth=depth, delimited=True)
                continue
            if position + 8 + length > end:
                raise EncodingError(f"truncated: an item of sequence {format_tag(tag)} runs past the end")
            self.data_set(position + 8, position + 8 + length, depth=depth, delimited=False)
            position += 8 + length

    def _fragments(self, position: int, end: int, tag: int) -> int:
        while True:
            if end - position < 8:
                raise EncodingError(f"truncated: encapsulated {format_tag(tag)} ends without its delimiter")
            item_tag, length = self._tag(position), self._uint32(position + 4)
            if item_tag == SEQUENCE_DELIMITER:
                return position + 8
            if item_tag != ITEM or length == UNDEFINED_LENGTH:
                raise EncodingError(f"corrupt: encapsulated {format_tag(tag)} holds a malformed fragment")
            if position + 8 + length > end:
                raise EncodingError(
                    f"truncated: a fragment of {format_tag(tag)} runs past the end of the file"
                )
            position += 8 + length


def _is_sequence(tag: int) -> bool:
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False
