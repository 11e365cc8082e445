def split_key_value(parts: list[bytes], delimiter: bytes) -> tuple[list[bytes | None], list[bytes]]:
    """(keys, values) of KEY<delimiter>VALUE records split at the first delimiter; a
    record without it has key None and is all value (as kcat -K)."""

def json_keys(lines: list[bytes], name: str | bytes | None) -> tuple[list[bytes | None] | None, list[int]]:
    """(keys, left): each line's top-level member ``name`` as key bytes, and the indices
    of the lines left to json.loads (malformed, blank, keys that need decoding)."""
