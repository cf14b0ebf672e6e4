"""Read and write the protobuf wire format, just enough to walk and cut ONNX files.

Scope: varints, length-delimited and fixed-width fields. No schema, no packed-field
decoding, no groups (ONNX uses none). This lets the runtime inspect external-data
references and cut graphs with no dependency beyond the standard library.

Example: fields(b"\\x08\\x96\\x01") -> [(1, 0, 150)]
"""

from __future__ import annotations

from collections.abc import Iterator

FieldValue = int | memoryview

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireFormatError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return (value, position after it)."""
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise WireFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireFormatError("varint longer than 10 bytes")


def iter_fields(buf: memoryview) -> Iterator[tuple[int, int, FieldValue, memoryview]]:
    """Yield (field number, wire type, value, raw field bytes) for each field of a message.

    The value is an int for varint and fixed fields, a memoryview of the payload for
    length-delimited ones. The raw bytes include the tag, so a field can be re-emitted as is.
    """
    value: FieldValue
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire_type == LENGTH_DELIMITED:
            size, pos = read_varint(buf, pos)
            if pos + size > len(buf):
                raise WireFormatError(f"field {number} runs past the end of its message")
            value = buf[pos : pos + size]
            pos += size
        elif wire_type in (FIXED64, FIXED32):
            width = 8 if wire_type == FIXED64 else 4
            if pos + width > len(buf):
                raise WireFormatError(f"field {number} runs past the end of its message")
            value = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        else:
            raise WireFormatError(f"unsupported wire type {wire_type} in field {number}")
        yield number, wire_type, value, buf[start:pos]


def encode_varint(value: int) -> bytes:
    """Encode a non-negative int as a varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_message_field(number: int, payload: bytes) -> bytes:
    """Encode a length-delimited field (a sub-message or a string)."""
    return encode_varint((number << 3) | LENGTH_DELIMITED) + encode_varint(len(payload)) + payload
