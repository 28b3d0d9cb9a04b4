"""Record batches (magic v2): header validation and offset patching for the hot path, codecs for tools.

Pure: bytes in, bytes out; no files, no sockets, no clock.
"""

from riel.records.batch import (
    BATCH_HEADER_SIZE,
    RECORDS_COUNT_OFFSET,
    BatchHeader,
    Compression,
    Record,
    decode_batch,
    decode_batches,
    encode_batch,
    patch_base_offset,
    read_header,
    set_log_append_time,
    validate_batches,
)
from riel.records.errors import InvalidRecordError

__all__ = [
    "BATCH_HEADER_SIZE",
    "RECORDS_COUNT_OFFSET",
    "BatchHeader",
    "Compression",
    "InvalidRecordError",
    "Record",
    "decode_batch",
    "decode_batches",
    "encode_batch",
    "patch_base_offset",
    "read_header",
    "set_log_append_time",
    "validate_batches",
]
