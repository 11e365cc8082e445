# cython: language_level=3
"""``fastprod produce``'s per-record input work: splitting ``KEY<delim>VALUE`` lines and
taking the key field out of JSON Lines, in C, so that a plain record costs no Python
object beyond its key and value bytes.

``json_keys`` validates each line as JSON (RFC 8259) and takes a top-level member's value
as the key. It handles the common case only and says which lines it left to Python
(``json.loads``): lines it finds malformed, blank, with a key that needs decoding (an
escape in it, a float, ``-0``, an object or array) or beyond its limits (nesting deeper
than MAX_DEPTH, an integer of more digits than Python reads). Python then gives those
lines the same treatment it gives every line without this kernel, so both paths agree.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.string cimport memcmp

cdef enum:
    MAX_DEPTH = 512
    MAX_INT_DIGITS = 4000  # Python refuses to read ints over 4300 digits


cdef inline bint _has_backslash(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] == 92:
            return True
    return False



cdef inline Py_ssize_t _find(const char *s, Py_ssize_t n, const char *d, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t i
    cdef char first = d[0]
    for i in range(n - m + 1):
        if s[i] == first and (m == 1 or memcmp(s + i, d, m) == 0):
            return i
    return -1


def split_key_value(list parts, bytes delimiter):
    """(keys, values) of ``KEY<delimiter>VALUE`` records split at the first delimiter;
    a record without it has key None and is all value (as kcat -K)."""
    cdef Py_ssize_t count = PyList_GET_SIZE(parts), i, n, at
    cdef Py_ssize_t m = PyBytes_GET_SIZE(delimiter)
    cdef const char *d = PyBytes_AS_STRING(delimiter)
    cdef const char *s
    cdef object part
    if m == 0:
        raise ValueError("the key delimiter must not be empty")
    keys = [None] * count
    values = [None] * count
    for i in range(count):
        part = <object>PyList_GET_ITEM(parts, i)
        if type(part) is not bytes:
            raise TypeError(f"record {i} is {type(part).__name__}, not bytes")
        s = PyBytes_AS_STRING(part)
        n = PyBytes_GET_SIZE(part)
        at = _find(s, n, d, m)
        if at < 0:
            values[i] = part
        else:
            keys[i] = PyBytes_FromStringAndSize(s, at)
            values[i] = PyBytes_FromStringAndSize(s + at + m, n - at - m)
    return keys, values


# ---- a JSON validator ------------------------------------------------------------------------
# Each scanner returns the index after what it read, or -1 when the text is not valid JSON
# or not for this kernel (Python decides then).

cdef inline Py_ssize_t _ws(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and (s[i] == 32 or s[i] == 9 or s[i] == 10 or s[i] == 13):
        i += 1
    return i


cdef inline bint _hex(unsigned char c) noexcept nogil:
    return (48 <= c <= 57) or (65 <= c <= 70) or (97 <= c <= 102)


cdef inline Py_ssize_t _utf8(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """One multi-byte UTF-8 sequence at s[i] as Python's strict decoder accepts it (no
    overlong forms, no surrogates, nothing above U+10FFFF)."""
    cdef unsigned char c = s[i], c1
    if 0xC2 <= c <= 0xDF:
        if i + 1 < n and (s[i + 1] & 0xC0) == 0x80:
            return i + 2
        return -1
    if 0xE0 <= c <= 0xEF:
        if i + 2 >= n:
            return -1
        c1 = s[i + 1]
        if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
            return -1
        if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F):
            return -1
        return i + 3
    if 0xF0 <= c <= 0xF4:
        if i + 3 >= n:
            return -1
        c1 = s[i + 1]
        if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80 or (s[i + 3] & 0xC0) != 0x80:
            return -1
        if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F):
            return -1
        return i + 4
    return -1


cdef Py_ssize_t _string(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                        bint *escaped) noexcept nogil:
    """s[i] is the opening quote."""
    cdef unsigned char c, e
    i += 1
    while i < n:
        c = s[i]
        if c == 34:  # "
            return i + 1
        if c == 92:  # backslash
            escaped[0] = True
            if i + 1 >= n:
                return -1
            e = s[i + 1]
            if e == 117:  # \uXXXX
                if i + 5 >= n or not (_hex(s[i + 2]) and _hex(s[i + 3]) and _hex(s[i + 4])
                                      and _hex(s[i + 5])):
                    return -1
                i += 6
            elif e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 \
                    or e == 114 or e == 116:
                i += 2
            else:
                return -1
        elif c < 32:
            return -1
        elif c < 128:
            i += 1
        else:
            i = _utf8(s, i, n)
            if i < 0:
                return -1
    return -1


cdef Py_ssize_t _number(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                        bint *integer) noexcept nogil:
    cdef Py_ssize_t start
    integer[0] = True
    if s[i] == 45:  # -
        i += 1
    if i >= n:
        return -1
    if s[i] == 48:  # 0
        i += 1
    elif 49 <= s[i] <= 57:
        start = i
        while i < n and 48 <= s[i] <= 57:
            i += 1
        if i - start > MAX_INT_DIGITS:
            return -1
    else:
        return -1
    if i < n and s[i] == 46:  # .
        integer[0] = False
        i += 1
        if i >= n or not 48 <= s[i] <= 57:
            return -1
        while i < n and 48 <= s[i] <= 57:
            i += 1
    if i < n and (s[i] == 101 or s[i] == 69):  # e E
        integer[0] = False
        i += 1
        if i < n and (s[i] == 43 or s[i] == 45):
            i += 1
        if i >= n or not 48 <= s[i] <= 57:
            return -1
        while i < n and 48 <= s[i] <= 57:
            i += 1
    return i


cdef inline Py_ssize_t _literal(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                                const char *word, Py_ssize_t m) noexcept nogil:
    if i + m <= n and memcmp(s + i, word, m) == 0:
        return i + m
    return -1


cdef Py_ssize_t _key_colon(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """A member's name and its colon: the index of the value (after whitespace)."""
    cdef bint escaped = False
    i = _ws(s, i, n)
    if i >= n or s[i] != 34:
        return -1
    i = _string(s, i, n, &escaped)
    if i < 0:
        return -1
    i = _ws(s, i, n)
    if i >= n or s[i] != 58:  # :
        return -1
    return _ws(s, i + 1, n)


cdef Py_ssize_t _value(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """One JSON value starting at s[i] (whitespace skipped), iteratively (no recursion)."""
    cdef char stack[MAX_DEPTH]
    cdef int depth = 0
    cdef bint need_value = True, flag
    cdef unsigned char c
    while True:
        if need_value:
            i = _ws(s, i, n)
            if i >= n:
                return -1
            c = s[i]
            if c == 123 or c == 91:  # { [
                i = _ws(s, i + 1, n)
                if i < n and s[i] == (125 if c == 123 else 93):  # empty {} []
                    i += 1
                else:
                    if depth >= MAX_DEPTH:
                        return -1
                    stack[depth] = c
                    depth += 1
                    if c == 123:
                        i = _key_colon(s, i, n)
                        if i < 0:
                            return -1
                    continue
            elif c == 34:
                i = _string(s, i, n, &flag)
            elif c == 45 or 48 <= c <= 57:
                i = _number(s, i, n, &flag)
            elif c == 116:
                i = _literal(s, i, n, "true", 4)
            elif c == 102:
                i = _literal(s, i, n, "false", 5)
            elif c == 110:
                i = _literal(s, i, n, "null", 4)
            else:
                return -1
            if i < 0:
                return -1
            need_value = False
        if depth == 0:
            return i
        i = _ws(s, i, n)
        if i >= n:
            return -1
        c = s[i]
        if c == 44:  # ,
            if stack[depth - 1] == 123:
                i = _key_colon(s, i + 1, n)
                if i < 0:
                    return -1
            else:
                i += 1
            need_value = True
        elif (c == 125 and stack[depth - 1] == 123) or (c == 93 and stack[depth - 1] == 91):
            depth -= 1
            i += 1
        else:
            return -1


cdef int _top_member(const unsigned char *s, Py_ssize_t n, const char *name, Py_ssize_t m,
                     Py_ssize_t *vstart, Py_ssize_t *vend) noexcept nogil:
    """Validate a line that is one JSON object and find the last member called ``name``
    (Python's json keeps the last of duplicates): 1 found, 0 not found, -1 not valid
    or not for this kernel. ``name`` None (m < 0): validate only."""
    cdef Py_ssize_t i = _ws(s, 0, n), kstart, kend, v
    cdef bint escaped, any_escaped = False
    cdef int found = 0
    if i >= n or s[i] != 123:
        return -1
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:
        i += 1
    else:
        while True:
            if i >= n or s[i] != 34:
                return -1
            escaped = False
            kstart = i + 1
            i = _string(s, i, n, &escaped)
            if i < 0:
                return -1
            kend = i - 1
            i = _ws(s, i, n)
            if i >= n or s[i] != 58:
                return -1
            v = _ws(s, i + 1, n)
            i = _value(s, v, n)
            if i < 0:
                return -1
            if m >= 0 and kend - kstart == m and memcmp(s + kstart, name, m) == 0:
                found = 1
                vstart[0] = v
                vend[0] = i
            elif escaped:
                any_escaped = True  # an escaped name may spell ``name``: Python decides
            i = _ws(s, i, n)
            if i >= n:
                return -1
            if s[i] == 44:
                i = _ws(s, i + 1, n)
                continue
            if s[i] == 125:
                i += 1
                break
            return -1
    if _ws(s, i, n) != n:
        return -1
    if any_escaped and m >= 0:
        return 2
    return found


def json_keys(list lines, name):
    """(keys, left): for each line, the top-level member ``name`` as key bytes (a
    string's text, an integer's digits, true/false, None for null), and the indices of
    the lines left to Python (see the module doc). ``name`` None: validate only, keys
    is None."""
    cdef Py_ssize_t count = PyList_GET_SIZE(lines), i, n, m = -1, vs = 0, ve = 0
    cdef const unsigned char *s
    cdef const char *cname = NULL
    cdef int found
    cdef bint integer
    cdef unsigned char c
    cdef object line
    cdef bytes bname
    if name is not None:
        bname = name.encode("utf-8") if isinstance(name, str) else bytes(name)
        cname = PyBytes_AS_STRING(bname)
        m = PyBytes_GET_SIZE(bname)
    keys = None if m < 0 else [None] * count
    left = []
    for i in range(count):
        line = <object>PyList_GET_ITEM(lines, i)
        if type(line) is not bytes:
            raise TypeError(f"line {i} is {type(line).__name__}, not bytes")
        s = <const unsigned char *>PyBytes_AS_STRING(line)
        n = PyBytes_GET_SIZE(line)
        with nogil:
            found = _top_member(s, n, cname, m, &vs, &ve)
        if found < 0 or (m >= 0 and found != 1):
            left.append(i)
            continue
        if m < 0:
            continue
        c = s[vs]
        if c == 34:  # a string: its text, unless it has escapes to decode
            integer = False
            if _has_backslash(s + vs + 1, ve - vs - 2):
                left.append(i)
                continue
            keys[i] = PyBytes_FromStringAndSize(<const char *>s + vs + 1, ve - vs - 2)
        elif c == 110:  # null
            pass
        elif c == 116 or c == 102:  # true false, as json.dumps writes them
            keys[i] = PyBytes_FromStringAndSize(<const char *>s + vs, ve - vs)
        elif c == 45 or 48 <= c <= 57:
            _number(s, vs, ve, &integer)
            if not integer or (ve - vs == 2 and s[vs] == 45 and s[vs + 1] == 48):  # -0 is 0
                left.append(i)
                continue
            keys[i] = PyBytes_FromStringAndSize(<const char *>s + vs, ve - vs)
        else:  # an object or array: Python writes its compact JSON
            left.append(i)
    return keys, left

