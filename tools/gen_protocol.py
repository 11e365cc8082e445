#!/usr/bin/env python3
"""Generate ``fastprod/protocol/messages/`` from Apache Kafka's JSON message schemas.

    python tools/gen_protocol.py            # (re)write the generated modules
    python tools/gen_protocol.py --check    # exit 1 if the committed output is stale

The schemas are Apache Kafka's (``clients/src/main/resources/common/message/*.json`` in
apache/kafka), for the Kafka version the project pins (``KAFKA_VERSION`` in
fastprod/localkafka/jars.py). They are read, in this order, from:

1. ``--schema-dir DIR``, if given;
2. ``common/message/`` inside that version's ``kafka-clients`` jar in the jar cache
   (``~/.cache/fastprod/kafka-<version>/libs/``; ``python -m fastprod broker fetch`` puts it
   there, and ``./run-tests`` runs that first, so the drift check works in any clone).

With neither, the generator exits 2 saying to fetch the jars. The schemas are not copied
into the repository, as the project's reference (shared/reference/kafka-protocol/README.md)
asks: "Do not copy these files into the project; the generated code is the project's own."

Only ``SCHEMA_FILES`` are read (the APIs in ``API_NAMES`` plus the headers). One module per
API holds its request and response (``produce.py``: ProduceRequest, ProduceResponse);
``header.py`` holds the request and response headers; ``__init__.py`` indexes them by api
key. Moving to a newer Kafka means bumping ``KAFKA_VERSION`` (the broker moves with it),
fetching, rerunning this script and reviewing the diff of the generated code.

What the generated code looks like, and why:

- Each struct becomes a ``@dataclass(slots=True)`` with snake_case fields and the schema
  defaults, plus ``FIELDS`` metadata (versions, nullability, tags, entity types).
- Each struct gets one encoder and one decoder function per distinct wire layout, not per
  version: versions whose layout (recursively) is identical share a function. Inside, the
  code is straight-line: runs of fixed-width fields are packed and unpacked with one
  precompiled ``struct.Struct``; there are no per-field version checks or type dispatch.
- Decoders build objects with positional arguments, filling absent fields with defaults.
- Tagged fields whose value equals the default are not written (as in Java); unknown tags
  are skipped on read.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import keyword
import re
import sys
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "fastprod" / "protocol" / "messages"
V_MAX = 0x7FFF

Range = tuple[int, int]

# Fixed-width types: struct code, size, Python annotation, default expression.
FIXED: dict[str, tuple[str, int, str, str]] = {
    "bool": ("?", 1, "bool", "False"),
    "int8": ("b", 1, "int", "0"),
    "int16": ("h", 2, "int", "0"),
    "uint16": ("H", 2, "int", "0"),
    "int32": ("i", 4, "int", "0"),
    "uint32": ("I", 4, "int", "0"),
    "int64": ("q", 8, "int", "0"),
    "float64": ("d", 8, "float", "0.0"),
    "uuid": ("16s", 16, "UUID", "UUID_ZERO"),
}
VARIABLE = {"string", "bytes", "records"}
# Struct codes spelled as identifier characters, for naming the Struct constants.
CODE_NAMES = {"?": "o", "16s": "u"}
# Names the generated functions use for locals and globals; decoder locals holding field
# values get a trailing underscore rather than shadow them.
RESERVED = {"buf", "pos", "out", "m", "n", "a", "e", "t", "tag", "start", "end", "sub",
            "tagged", "n_tags", "UUID", "UUID_ZERO", "field", "dataclass", "ClassVar",
            "Buffer", "FieldSpec", "Message", "Struct", "_struct", "_pack", "_unpack_from"}


# -- schema model ------------------------------------------------------------------------

def strip_comments(text: str) -> str:
    """Remove ``//`` comments outside JSON strings."""
    out: list[str] = []
    i, n, in_str = 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse_versions(spec: str | None) -> Range | None:
    """``"3-13"`` -> (3, 13), ``"9+"`` -> (9, V_MAX), ``"2"`` -> (2, 2), ``"none"`` -> None."""
    if spec is None or spec == "none":
        return None
    spec = spec.strip()
    if spec.endswith("+"):
        return int(spec[:-1]), V_MAX
    if "-" in spec:
        lo, hi = spec.split("-")
        return int(lo), int(hi)
    return int(spec), int(spec)


def in_range(v: int, r: Range | None) -> bool:
    return r is not None and r[0] <= v <= r[1]


def fmt_range(r: Range) -> str:
    return f"{r[0]}+" if r[1] == V_MAX else (f"{r[0]}" if r[0] == r[1] else f"{r[0]}-{r[1]}")


def snake(name: str) -> str:
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


@dataclass(eq=False)
class FieldDef:
    name: str                      # schema name, CamelCase
    py: str                        # attribute name, snake_case
    type: str                      # schema type string
    versions: Range
    nullable: Range | None
    tagged: Range | None
    tag: int | None
    flexible: Range | None         # field-level override, when has_flexible
    has_flexible: bool
    ignorable: bool
    entity_type: str | None
    default: object
    about: str
    struct: StructDef | None = None

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def elem(self) -> str:
        return self.type[2:] if self.is_array else self.type

    def present(self, v: int) -> bool:
        return in_range(v, self.versions)

    def is_tagged(self, v: int) -> bool:
        return in_range(v, self.tagged)

    def is_nullable(self, v: int) -> bool:
        return in_range(v, self.nullable)

    def compact(self, v: int, flexible: bool) -> bool:
        return in_range(v, self.flexible) if self.has_flexible else flexible


@dataclass(eq=False)
class StructDef:
    name: str
    fields: list[FieldDef]
    about: str
    used_versions: set[int] = field(default_factory=set)


@dataclass(eq=False)
class MessageDef:
    name: str
    kind: str                      # request, response, header
    api_key: int | None
    valid: Range
    flexible: Range | None
    latest_unstable: bool
    root: StructDef
    structs: dict[str, StructDef]  # every struct by name, root included
    schema_file: str


class SchemaError(Exception):
    pass


def load_message(file_name: str, text: str) -> MessageDef:
    """Parse one schema (``file_name``, e.g. ``ProduceRequest.json``, names it in errors)."""
    doc = json.loads(strip_comments(text))
    name = doc["name"]
    structs: dict[str, StructDef] = {}
    commons = {c["name"]: c for c in doc.get("commonStructs", [])}

    def parse_struct(sname: str, fields_doc: list[dict], about: str) -> StructDef:
        if sname in structs:
            return structs[sname]
        sd = StructDef(sname, [], about)
        structs[sname] = sd
        seen: set[str] = set()
        for fd in fields_doc:
            f = parse_field(fd, sname)
            if f.py in seen:
                raise SchemaError(f"{file_name}: duplicate field {f.py} in {sname}")
            seen.add(f.py)
            sd.fields.append(f)
        return sd

    def parse_field(fd: dict, owner: str) -> FieldDef:
        versions = parse_versions(fd["versions"])
        if versions is None:
            raise SchemaError(f"{file_name}: field {fd['name']} has no versions")
        py = snake(fd["name"])
        if keyword.iskeyword(py) or py in ("encode", "encode_into", "decode", "decode_from",
                                            "is_flexible"):
            py += "_"
        f = FieldDef(
            name=fd["name"], py=py, type=fd["type"], versions=versions,
            nullable=parse_versions(fd.get("nullableVersions")),
            tagged=parse_versions(fd.get("taggedVersions")),
            tag=fd.get("tag"),
            flexible=parse_versions(fd.get("flexibleVersions")),
            has_flexible="flexibleVersions" in fd,
            ignorable=bool(fd.get("ignorable", False)),
            entity_type=fd.get("entityType"),
            default=fd.get("default"),
            about=fd.get("about", ""),
        )
        if (f.tag is None) != (f.tagged is None):
            raise SchemaError(f"{file_name}: {owner}.{f.name} needs both tag and taggedVersions")
        elem = f.elem
        if elem not in FIXED and elem not in VARIABLE:
            if elem.startswith("[]"):
                raise SchemaError(f"{file_name}: nested arrays are not supported ({f.type})")
            if "fields" in fd:
                f.struct = parse_struct(elem, fd["fields"], f.about)
            elif elem in commons:
                c = commons[elem]
                f.struct = parse_struct(elem, c["fields"], c.get("about", ""))
            elif elem in structs:
                f.struct = structs[elem]
            else:
                raise SchemaError(f"{file_name}: unknown type {f.type} of {owner}.{f.name}")
            if not f.is_array and f.nullable is not None:
                raise SchemaError(f"{file_name}: nullable struct {owner}.{f.name} "
                                  "is not supported")
        elif "fields" in fd:
            raise SchemaError(f"{file_name}: primitive field {owner}.{f.name} has fields")
        if f.is_array and elem in ("records",):
            raise SchemaError(f"{file_name}: arrays of records are not supported")
        if f.has_flexible and elem not in ("string", "bytes"):
            raise SchemaError(f"{file_name}: flexibleVersions on {owner}.{f.name} "
                              "only makes sense for strings and bytes")
        return f

    root = parse_struct(name, doc["fields"], "")
    valid = parse_versions(doc["validVersions"])
    assert valid is not None
    msg = MessageDef(
        name=name, kind=doc["type"], api_key=doc.get("apiKey"), valid=valid,
        flexible=parse_versions(doc.get("flexibleVersions")),
        latest_unstable=bool(doc.get("latestVersionUnstable", False)),
        root=root, structs=structs, schema_file=file_name,
    )

    def visit(sd: StructDef, v: int) -> None:
        sd.used_versions.add(v)
        for f in sd.fields:
            if f.present(v):
                if f.is_tagged(v) and not in_range(v, msg.flexible):
                    raise SchemaError(f"{file_name}: {sd.name}.{f.name} is tagged in "
                                      f"non-flexible version {v}")
                if f.struct is not None:
                    visit(f.struct, v)

    for v in range(valid[0], valid[1] + 1):
        visit(root, v)
    for sd in structs.values():
        tags = [f.tag for f in sd.fields if f.tag is not None]
        if len(tags) != len(set(tags)):
            raise SchemaError(f"{file_name}: duplicate tags in {sd.name}")
    return msg


# -- defaults and type annotations ---------------------------------------------------------

def default_expr(f: FieldDef) -> str:
    """Python expression for the field's default (a fresh object for mutable ones)."""
    d = f.default
    if f.is_array:
        if d == "null":
            return "None"
        return "[]"
    if f.struct is not None:
        return f"{f.struct.name}()"
    if d == "null":
        if f.nullable is None:
            raise SchemaError(f"{f.name}: default null on a non-nullable field")
        return "None"
    t = f.type
    if t == "bool":
        if d is None:
            return "False"
        if isinstance(d, bool):
            return repr(d)
        if d not in ("true", "false"):
            raise SchemaError(f"{f.name}: bad bool default {d!r}")
        return "True" if d == "true" else "False"
    if t in FIXED and t not in ("uuid", "float64"):
        return "0" if d is None else str(parse_int(str(d)))
    if t == "float64":
        return "0.0" if d is None else repr(float(d))
    if t == "uuid":
        if d not in (None, "", "AAAAAAAAAAAAAAAAAAAAAA"):
            raise SchemaError(f"{f.name}: unsupported uuid default {d!r}")
        return "UUID_ZERO"
    if t == "string":
        return repr("" if d is None else str(d))
    if t == "bytes":
        if d not in (None, ""):
            raise SchemaError(f"{f.name}: unsupported bytes default {d!r}")
        return "b\"\""
    if t == "records":
        # Java leaves records null unless set.
        return "None"
    raise SchemaError(f"{f.name}: no default for type {t}")


def parse_int(text: str) -> int:
    """Schema integer defaults: decimal, or hexadecimal with 0x."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    return sign * (int(digits, 16) if digits.lower().startswith("0x") else int(digits, 10))


def annotation(f: FieldDef) -> str:
    def base(t: str) -> str:
        if t in FIXED:
            return FIXED[t][2]
        if t == "string":
            return "str"
        if t == "bytes":
            return "bytes"
        if t == "records":
            # Any buffer is accepted on encode (zero-copy); decode returns bytes.
            return "Buffer"
        assert f.struct is not None
        return f.struct.name

    if f.is_array:
        ann = f"list[{base(f.elem)}]"
    else:
        ann = base(f.type)
    if f.nullable is not None or default_expr(f) == "None":
        ann += " | None"
    return ann


def is_default_test(f: FieldDef, expr: str) -> str:
    """Python condition that is true when ``expr`` holds a non-default value."""
    d = default_expr(f)
    if d == "None":
        return f"{expr} is not None"
    if d == "[]":
        return f"{expr}"
    if d == "False":
        return f"{expr}"
    return f"{expr} != {d}"


# -- code generation -------------------------------------------------------------------------

class ModuleGen:
    def __init__(self, messages: list[MessageDef], module: str) -> None:
        self.messages = messages
        self.module = module
        self.structs_used: set[str] = set()       # Struct constants by format
        self.helpers: set[str] = set()            # names imported from primitives
        self.enc_name: dict[tuple[str, int], str] = {}
        self.dec_name: dict[tuple[str, int], str] = {}
        self.min_size: dict[tuple[str, int], int] = {}
        self.functions: list[str] = []
        self.uses_pack = False
        self.uses_unpack = False

    # -- helpers

    def struct_const(self, codes: list[str]) -> str:
        fmt = ">" + "".join(codes)
        name = "_S_" + "".join(CODE_NAMES.get(c, c) for c in codes)
        self.structs_used.add(f"{name} = _struct.Struct({fmt!r})")
        return name

    def helper(self, name: str) -> str:
        self.helpers.add(name)
        return name

    def var(self, f: FieldDef) -> str:
        """The local variable holding ``f`` in a decoder."""
        clash = f.py in RESERVED or f.py.startswith(("read_", "write_", "skip_"))
        return f.py + "_" if clash else f.py

    def field_min_size(self, f: FieldDef, v: int, compact: bool) -> int:
        if f.is_array:
            return 1 if compact else 4
        if f.type in FIXED:
            return FIXED[f.type][1]
        if f.type == "string":
            return 1 if compact else 2
        if f.type in ("bytes", "records"):
            return 1 if compact else 4
        assert f.struct is not None
        return self.min_size[(f.struct.name, v)]

    def elem_min_size(self, f: FieldDef, v: int, compact: bool) -> int:
        """Smallest encoding of one array element, to reject impossible counts early."""
        e = f.elem
        if e in FIXED:
            return FIXED[e][1]
        if e == "string":
            return 1 if compact else 2
        if e == "bytes":
            return 1 if compact else 4
        assert f.struct is not None
        return self.min_size[(f.struct.name, v)]

    # -- encoding

    def enc_value(self, f: FieldDef, v: int, flexible: bool, expr: str, out: str) -> list[str]:
        """Statements appending the (non-tagged-framed) value of ``f`` at version v."""
        compact = f.compact(v, flexible)
        nullable = f.is_nullable(v)
        pre = ("compact_" if compact else "") + ("nullable_" if nullable else "")
        if not f.is_array:
            if f.type in FIXED:
                codes = [FIXED[f.type][0]]
                s = self.struct_const(codes)
                val = f"{expr}.bytes" if f.type == "uuid" else expr
                return [f"{out} += {s}.pack({val})"]
            if f.type == "string":
                return [f"{self.helper('write_' + pre + 'string')}({out}, {expr})"]
            if f.type in ("bytes", "records"):
                return [f"{self.helper('write_' + pre + 'bytes')}({out}, {expr})"]
            assert f.struct is not None
            return [f"{self.enc_name[(f.struct.name, v)]}({expr}, {out})"]
        # names per field: mypy gives a variable one type, and two arrays of one struct
        # hold different element types
        a, e_var = f"a_{f.py}", f"e_{f.py}"
        lines = [f"{a} = {expr}"]
        body: list[str] = []
        if compact:
            body.append(f"{self.helper('write_uvarint')}({out}, len({a}) + 1)")
        else:
            body.append(f"{out} += {self.struct_const(['i'])}.pack(len({a}))")
        e = f.elem
        if e in FIXED and e != "uuid":
            self.uses_pack = True
            body.append(f"{out} += _pack('>%d{FIXED[e][0]}' % len({a}), *{a})")
        elif e == "uuid":
            body.append(f"for {e_var} in {a}: {out} += {e_var}.bytes")
        elif e in ("string", "bytes"):
            body.append(f"for {e_var} in {a}: "
                        f"{self.helper('write_' + ('compact_' if compact else '') + e)}"
                        f"({out}, {e_var})")
        else:
            assert f.struct is not None
            body.append(f"for {e_var} in {a}: {self.enc_name[(f.struct.name, v)]}"
                        f"({e_var}, {out})")
        if nullable:
            null = f"{out}.append(0)" if compact else f"{out} += b'\\xff\\xff\\xff\\xff'"
            lines += [f"if {a} is None:", f"    {null}", "else:"] + ["    " + b for b in body]
        else:
            lines += body
        return lines

    def gen_encoder(self, sd: StructDef, v: int, flexible: bool) -> list[str]:
        lines: list[str] = []
        group_codes: list[str] = []
        group_vals: list[str] = []

        def flush() -> None:
            if group_codes:
                s = self.struct_const(group_codes)
                lines.append(f"out += {s}.pack({', '.join(group_vals)})")
                group_codes.clear()
                group_vals.clear()

        tagged: list[FieldDef] = []
        for f in sd.fields:
            expr = f"m.{f.py}"
            if not f.present(v):
                if not f.ignorable:
                    flush()
                    lines.append(f"if {is_default_test(f, expr)}:")
                    lines.append(f"    raise _absent({sd.name!r}, {f.py!r}, "
                                 f"{fmt_range(f.versions)!r})")
                continue
            if f.is_tagged(v):
                tagged.append(f)
                continue
            if (f.nullable is not None and not f.is_nullable(v)
                    and (f.is_array or f.type in VARIABLE)):
                flush()
                lines.append(f"if {expr} is None:")
                lines.append(f"    raise _not_nullable({sd.name!r}, {f.py!r}, "
                             f"{fmt_range(f.nullable)!r})")
            if not f.is_array and f.type in FIXED:
                group_codes.append(FIXED[f.type][0])
                group_vals.append(f"{expr}.bytes" if f.type == "uuid" else expr)
                continue
            flush()
            lines += self.enc_value(f, v, flexible, expr, "out")
        flush()
        if flexible:
            if not tagged:
                lines.append("out.append(0)  # no tagged fields")
            else:
                lines.append("tagged = []")
                for f in sorted(tagged, key=lambda x: x.tag or 0):
                    expr = f"m.{f.py}"
                    lines.append(f"if {is_default_test(f, expr)}:")
                    lines.append("    t = bytearray()")
                    lines += ["    " + s for s in self.enc_value(f, v, flexible, expr, "t")]
                    lines.append(f"    tagged.append(({f.tag}, t))")
                lines.append(f"{self.helper('write_tagged_fields')}(out, tagged)")
        return lines or ["pass"]

    # -- decoding

    def dec_value(self, f: FieldDef, v: int, flexible: bool, target: str,
                  buf: str) -> list[str]:
        """Statements reading the value of ``f`` into ``target``, advancing ``pos``."""
        compact = f.compact(v, flexible)
        nullable = f.is_nullable(v)
        pre = ("compact_" if compact else "") + ("nullable_" if nullable else "")
        if not f.is_array:
            if f.type in FIXED:
                code, size, _, _ = FIXED[f.type]
                s = self.struct_const([code])
                lines = [f"{target}, = {s}.unpack_from({buf}, pos)", f"pos += {size}"]
                if f.type == "uuid":
                    lines.append(f"{target} = UUID(bytes={target})")
                return lines
            if f.type == "string":
                return [f"{target}, pos = {self.helper('read_' + pre + 'string')}({buf}, pos)"]
            if f.type in ("bytes", "records"):
                return [f"{target}, pos = {self.helper('read_' + pre + 'bytes')}({buf}, pos)"]
            assert f.struct is not None
            return [f"{target}, pos = {self.dec_name[(f.struct.name, v)]}({buf}, pos)"]
        e = f.elem
        min_size = self.elem_min_size(f, v, compact)
        reader = self.helper(f"read_{pre}array_len")
        lines = [f"n, pos = {reader}({buf}, pos, {min_size})"]
        body: list[str] = []
        if e in FIXED and e != "uuid":
            self.uses_unpack = True
            code, size, _, _ = FIXED[e]
            body.append(f"{target} = list(_unpack_from('>%d{code}' % n, {buf}, pos))")
            body.append(f"pos += {size} * n")
        else:
            body.append(f"{target} = []")
            body.append("for _ in range(n):")
            if e == "uuid":
                s = self.struct_const(["16s"])
                body.append(f"    {target}.append(UUID(bytes={s}.unpack_from({buf}, pos)[0]))")
                body.append("    pos += 16")
            elif e in ("string", "bytes"):
                r = self.helper("read_" + ("compact_" if compact else "") + e)
                body.append(f"    e_{f.py}, pos = {r}({buf}, pos)")
                body.append(f"    {target}.append(e_{f.py})")
            else:
                assert f.struct is not None
                body.append(f"    e_{f.py}, pos = {self.dec_name[(f.struct.name, v)]}({buf}, pos)")
                body.append(f"    {target}.append(e_{f.py})")
        if nullable:
            lines += ["if n < 0:", f"    {target} = None", "else:"] + ["    " + b for b in body]
        else:
            lines += body
        return lines

    def gen_decoder(self, sd: StructDef, v: int, flexible: bool) -> list[str]:
        lines: list[str] = []
        group_codes: list[str] = []
        group_vars: list[FieldDef] = []

        def flush() -> None:
            if not group_codes:
                return
            s = self.struct_const(group_codes)
            size = sum(FIXED[f.type][1] for f in group_vars)
            names = ", ".join(self.var(f) for f in group_vars)
            if len(group_vars) == 1:
                names += ","
            lines.append(f"{names} = {s}.unpack_from(buf, pos)")
            lines.append(f"pos += {size}")
            for f in group_vars:
                if f.type == "uuid":
                    lines.append(f"{self.var(f)} = UUID(bytes={self.var(f)})")
            group_codes.clear()
            group_vars.clear()

        tagged: list[FieldDef] = []
        for f in sd.fields:
            if not f.present(v):
                continue
            if f.is_tagged(v):
                tagged.append(f)
                continue
            if not f.is_array and f.type in FIXED:
                group_codes.append(FIXED[f.type][0])
                group_vars.append(f)
                continue
            flush()
            lines += self.dec_value(f, v, flexible, self.var(f), "buf")
        flush()
        if flexible:
            # Fast path: almost every tagged-fields section is the single byte 0. (An
            # IndexError here on a short buffer becomes ProtocolError in decode_from.)
            if not tagged:
                lines.append("if buf[pos]:")
                lines.append(f"    pos = {self.helper('skip_tagged_fields')}(buf, pos)")
                lines.append("else:")
                lines.append("    pos += 1")
            else:
                for f in tagged:  # annotated: an empty list's type is not inferred
                    lines.append(f"{self.var(f)}: {annotation(f)} = {default_expr(f)}")
                lines.append("if buf[pos]:")
                lines.append(f"    n_tags, pos = {self.helper('read_uvarint')}(buf, pos)")
                lines.append("    for _ in range(n_tags):")
                lines.append(f"        tag, pos, end = {self.helper('read_tag')}(buf, pos)")
                for i, f in enumerate(sorted(tagged, key=lambda x: x.tag or 0)):
                    kw = "if" if i == 0 else "elif"
                    lines.append(f"        {kw} tag == {f.tag}:")
                    lines.append("            sub = buf[:end]")
                    lines += ["            " + s for s in self.dec_value(f, v, flexible,
                                                                         self.var(f), "sub")]
                    lines.append("            if pos != end:")
                    lines.append(f"                raise _bad_tag({sd.name!r}, {f.tag})")
                lines.append("        pos = end")
                lines.append("else:")
                lines.append("    pos += 1")
        args = []
        for f in sd.fields:
            args.append(self.var(f) if f.present(v) else default_expr(f))
        lines.append(f"return {sd.name}({', '.join(args)}), pos")
        return lines

    def min_struct_size(self, sd: StructDef, v: int, flexible: bool) -> int:
        size = 1 if flexible else 0
        for f in sd.fields:
            if f.present(v) and not f.is_tagged(v):
                size += self.field_min_size(f, v, f.compact(v, flexible))
        return size

    # -- per struct

    def gen_struct_functions(self, msg: MessageDef, sd: StructDef) -> None:
        """Encoders and decoders of ``sd`` for each version it is reachable in, deduplicated."""
        for direction in ("enc", "dec"):
            bodies: dict[str, str] = {}           # body text -> function name
            versions_of: dict[str, list[int]] = {}
            names = self.enc_name if direction == "enc" else self.dec_name
            for v in sorted(sd.used_versions):
                flexible = in_range(v, msg.flexible)
                if direction == "enc":
                    body = self.gen_encoder(sd, v, flexible)
                else:
                    self.min_size[(sd.name, v)] = self.min_struct_size(sd, v, flexible)
                    body = self.gen_decoder(sd, v, flexible)
                text = "\n".join(body)
                if text not in bodies:
                    bodies[text] = f"_{direction}_{sd.name}_v{v}"
                    versions_of[text] = []
                versions_of[text].append(v)
                names[(sd.name, v)] = bodies[text]
            for text, fname in bodies.items():
                vs = versions_of[text]
                label = ", ".join(fmt_ranges(vs))
                if direction == "enc":
                    sig = f"def {fname}(m: {sd.name}, out: bytearray) -> None:"
                else:
                    sig = f"def {fname}(buf: memoryview, pos: int) -> tuple[{sd.name}, int]:"
                doc = f'    """{sd.name} {"encoder" if direction == "enc" else "decoder"}, ' \
                      f'version{"s" if len(vs) > 1 else ""} {label}."""'
                self.functions.append("\n".join(
                    [sig, doc] + ["    " + line for line in text.split("\n")]))

    # -- classes

    def gen_class(self, msg: MessageDef, sd: StructDef) -> str:
        is_root = sd is msg.root
        lines = ["@dataclass(slots=True)"]
        lines.append(f"class {sd.name}({'Message' if is_root else 'Struct'}):")
        if is_root:
            what = f"api key {msg.api_key}" if msg.api_key is not None else "header"
            flex = (f"flexible from v{msg.flexible[0]}" if msg.flexible else "never flexible")
            lines.append(f'    """{msg.name} ({what}), versions {fmt_range(msg.valid)}, '
                         f'{flex}."""')
            lines.append("")
            lines.append(f"    API_KEY: ClassVar[int | None] = {msg.api_key!r}")
            lines.append(f"    MIN_VERSION: ClassVar[int] = {msg.valid[0]}")
            lines.append(f"    MAX_VERSION: ClassVar[int] = {msg.valid[1]}")
            fmin = msg.flexible[0] if msg.flexible else None
            lines.append(f"    FLEXIBLE_MIN_VERSION: ClassVar[int | None] = {fmin!r}")
            lines.append(f"    LATEST_VERSION_UNSTABLE: ClassVar[bool] = {msg.latest_unstable}")
            lines.append(f"    SCHEMA_FILE: ClassVar[str] = {msg.schema_file!r}")
        else:
            about = sd.about or sd.name
            lines.append(f'    """{about}"""' if len(about) < 88 else
                         '    """' + "\n    ".join(textwrap.wrap(about, 88)) + '\n    """')
            lines.append("")
        specs = []
        for f in sd.fields:
            kw = [repr(f.py), repr(f.type), repr(f.versions)]
            if f.nullable is not None:
                kw.append(f"nullable_versions={f.nullable!r}")
            if f.tagged is not None:
                kw.append(f"tagged_versions={f.tagged!r}, tag={f.tag}")
            if f.ignorable:
                kw.append("ignorable=True")
            if f.entity_type:
                kw.append(f"entity_type={f.entity_type!r}")
            if f.struct is not None:
                kw.append(f"struct={f.struct.name}")
            if f.has_flexible:
                kw.append(f"flexible_versions={f.flexible!r}, has_flexible_override=True")
            specs.append(f"        FieldSpec({', '.join(kw)}),")
        lines.append("    FIELDS: ClassVar[tuple[FieldSpec, ...]] = (")
        lines += specs
        lines.append("    )")
        for f in sd.fields:
            lines.append("")
            if f.about:
                lines += ["    #: " + w for w in textwrap.wrap(f.about, 88)]
            d = default_expr(f)
            if d == "[]":
                d = "field(default_factory=list)"
            elif f.struct is not None and not f.is_array:
                d = f"field(default_factory={f.struct.name})"
            elif f.type == "records":
                d = f"field(default={d}, repr=False)"  # keep megabytes out of log lines
            lines.append(f"    {f.py}: {annotation(f)} = {d}")
        return "\n".join(lines)

    def generate(self) -> str:
        classes: list[str] = []
        tables: list[str] = []
        top_names: set[str] = set()
        for msg in self.messages:
            order = post_order(msg.root)
            for sd in order:
                if sd.name in top_names:
                    raise SchemaError(f"struct name {sd.name} is used twice in {self.module}")
                top_names.add(sd.name)
                classes.append(self.gen_class(msg, sd))
            for sd in order:
                self.gen_struct_functions(msg, sd)
            vs = range(msg.valid[0], msg.valid[1] + 1)
            tables.append(dispatch_table(msg.name, "_ENCODERS",
                                         [self.enc_name[(msg.name, v)] for v in vs]))
            tables.append(dispatch_table(msg.name, "_DECODERS",
                                         [self.dec_name[(msg.name, v)] for v in vs]))
        clash = top_names & (self.helpers | RESERVED)
        if clash:
            raise SchemaError(f"struct names {sorted(clash)} clash with generated code names")
        files = " and ".join(m.schema_file for m in self.messages)
        head = [
            f"# Generated by tools/gen_protocol.py from {files}",
            "# (Apache Kafka message schemas). Do not edit: change the generator and rerun it.",
            "# ruff: noqa",
            "",
            "from __future__ import annotations",
            "",
            "from dataclasses import dataclass, field",
        ]
        head += [
            "import struct as _struct",
            "from typing import ClassVar",
            "from uuid import UUID",
            "",
            "from fastprod.protocol.base import Buffer, FieldSpec, Message, Struct",
            "from fastprod.protocol.base import absent_field_error as _absent",
            "from fastprod.protocol.base import bad_tagged_field_error as _bad_tag",
            "from fastprod.protocol.base import not_nullable_error as _not_nullable",
        ]
        helpers = sorted(self.helpers | {"UUID_ZERO"})
        head.append("from fastprod.protocol.primitives import (")
        head += [f"    {h}," for h in helpers]
        head.append(")")
        head.append("")
        if self.uses_pack:
            head.append("_pack = _struct.pack")
        if self.uses_unpack:
            head.append("_unpack_from = _struct.unpack_from")
        head += sorted(self.structs_used)
        body = "\n\n\n".join(classes)
        funcs = "\n\n\n".join(self.functions)
        text = "\n".join(head) + "\n\n\n" + body + "\n\n\n" + funcs + "\n\n\n" + \
            "\n".join(tables) + "\n"
        return text


def dispatch_table(owner: str, attr: str, names: list[str]) -> str:
    """``Owner._ENCODERS = (f_v3,) * 6 + (f_v9,) * 5``: index = version - MIN_VERSION."""
    runs: list[list] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    terms = [f"({name},)" + (f" * {count}" if count > 1 else "") for name, count in runs]
    return f"{owner}.{attr} = (\n    " + "\n    + ".join(terms) + "\n)"


def fmt_ranges(vs: list[int]) -> list[str]:
    """[3, 4, 5, 8] -> ["3-5", "8"]."""
    runs: list[list[int]] = []
    for v in vs:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in runs]


def post_order(root: StructDef) -> list[StructDef]:
    """Structs children-first, so every class and function exists before its users."""
    seen: list[StructDef] = []

    def walk(sd: StructDef) -> None:
        for f in sd.fields:
            if f.struct is not None and f.struct not in seen:
                walk(f.struct)
        if sd not in seen:
            seen.append(sd)

    walk(root)
    return seen


# -- driver ------------------------------------------------------------------------------------

# The APIs fastprod speaks: the producer's, and CreateTopics for fastprod.localkafka.probe.
# To add one, name it here and rerun the generator.
API_NAMES = ("ApiVersions", "Metadata", "Produce", "InitProducerId", "FindCoordinator",
             "AddPartitionsToTxn", "AddOffsetsToTxn", "TxnOffsetCommit", "EndTxn",
             "SaslHandshake", "SaslAuthenticate", "CreateTopics")
SCHEMA_FILES = ("RequestHeader.json", "ResponseHeader.json") + tuple(
    f"{api}{kind}.json" for api in API_NAMES for kind in ("Request", "Response"))
JAR_SCHEMA_DIR = "common/message/"  # inside kafka-clients-<version>.jar
FETCH_HINT = "run `python -m fastprod broker fetch` (or pass --schema-dir)"


def _jars_module():  # type: ignore[no-untyped-def]
    """fastprod/localkafka/jars.py, loaded by path: the jar cache's location and version.

    Not ``import fastprod.localkafka.jars``: that runs fastprod/__init__.py (the compiled
    kernels) and localkafka/__init__.py (probe.py, which imports the generated code), and
    the generator must run in an unbuilt clone and when its own output is broken.
    jars.py uses the standard library only.
    """
    path = ROOT / "fastprod" / "localkafka" / "jars.py"
    spec = importlib.util.spec_from_file_location("_fastprod_localkafka_jars", path)
    if spec is None or spec.loader is None:
        raise SchemaError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clients_jar() -> tuple[Path, str]:
    """The pinned Kafka version's kafka-clients jar in the jar cache (may not exist yet)."""
    jars = _jars_module()
    return jars.jar_dir() / f"kafka-clients-{jars.KAFKA_VERSION}.jar", jars.KAFKA_VERSION


def read_schemas(schema_dir: Path | None) -> tuple[dict[str, str], str]:
    """SCHEMA_FILES (name -> text) from ``schema_dir``, else from the kafka-clients jar;
    also a description of where they came from."""
    if schema_dir is not None:
        if not schema_dir.is_dir() or not any(schema_dir.glob("*.json")):
            raise SchemaError(f"no *.json schemas in {schema_dir}")
        missing = [n for n in SCHEMA_FILES if not (schema_dir / n).is_file()]
        if missing:
            raise SchemaError(f"{schema_dir} lacks {', '.join(missing)}")
        return {n: (schema_dir / n).read_text(encoding="utf-8") for n in SCHEMA_FILES}, \
            str(schema_dir)
    jar, version = clients_jar()
    if not jar.is_file():
        raise SchemaError(f"the Kafka {version} message schemas are read from {jar}, which "
                          f"is not there: {FETCH_HINT}")
    try:
        with zipfile.ZipFile(jar) as zf:
            names = set(zf.namelist())
            missing = [n for n in SCHEMA_FILES if JAR_SCHEMA_DIR + n not in names]
            if missing:
                raise SchemaError(f"{jar} lacks "
                                  + ", ".join(JAR_SCHEMA_DIR + n for n in missing))
            return {n: zf.read(JAR_SCHEMA_DIR + n).decode("utf-8") for n in SCHEMA_FILES}, \
                str(jar)
    except (OSError, zipfile.BadZipFile) as exc:
        # fetch leaves a complete libs/ alone, so a damaged jar needs the folder removed.
        raise SchemaError(f"cannot read {jar} ({exc}): remove {jar.parent} and "
                          f"{FETCH_HINT}") from exc


def module_name(msg: MessageDef) -> str:
    if msg.kind == "header":
        return "header"
    base = re.sub(r"(Request|Response)$", "", msg.name)
    return snake(base)


def generate(schemas: dict[str, str]) -> dict[str, str]:
    """Every generated file (relative name -> text) from ``schemas`` (file name -> JSON)."""
    modules: dict[str, list[MessageDef]] = {}
    for file_name, text in sorted(schemas.items()):
        msg = load_message(file_name, text)
        modules.setdefault(module_name(msg), []).append(msg)
    kind_order = {"request": 0, "response": 1, "header": 2}
    out: dict[str, str] = {}
    index_imports: list[str] = []
    requests: list[tuple[int, str]] = []
    responses: list[tuple[int, str]] = []
    for mod, msgs in sorted(modules.items()):
        msgs.sort(key=lambda m: (kind_order[m.kind], m.name))
        out[f"{mod}.py"] = ModuleGen(msgs, mod).generate()
        index_imports.append(f"from fastprod.protocol.messages.{mod} import "
                             f"{', '.join(m.name for m in msgs)}")
        for m in msgs:
            if m.kind == "request":
                requests.append((m.api_key or 0, m.name))
            elif m.kind == "response":
                responses.append((m.api_key or 0, m.name))
    names = sorted(n for msgs in modules.values() for n in (m.name for m in msgs))
    index = [
        "# Generated by tools/gen_protocol.py. Do not edit: change the generator and rerun it.",
        '"""Generated Kafka message classes, one module per API (plus ``header``)."""',
        "",
        "from __future__ import annotations",
        "",
        "from fastprod.protocol.base import Message",
    ] + index_imports + [
        "",
        "__all__ = [",
    ] + [f"    {n!r}," for n in names + ["REQUESTS", "RESPONSES"]] + [
        "]",
        "",
        "#: Request class by api key.",
        "REQUESTS: dict[int, type[Message]] = {",
    ] + [f"    {k}: {n}," for k, n in sorted(requests)] + [
        "}",
        "",
        "#: Response class by api key.",
        "RESPONSES: dict[int, type[Message]] = {",
    ] + [f"    {k}: {n}," for k, n in sorted(responses)] + ["}", ""]
    out["__init__.py"] = "\n".join(index)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the committed files are out of date")
    parser.add_argument("--schema-dir", type=Path, default=None,
                        help="read the schemas from this folder instead of the kafka-clients "
                             "jar in the jar cache")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    try:
        schemas, source = read_schemas(args.schema_dir)
        files = generate(schemas)
    except SchemaError as exc:
        print(f"gen_protocol: {exc}", file=sys.stderr)
        return 2
    existing = {p.name for p in args.out_dir.glob("*.py")} if args.out_dir.exists() else set()
    stale = sorted(existing - files.keys())
    if args.check:
        changed = [name for name, text in sorted(files.items())
                   if not (args.out_dir / name).exists()
                   or (args.out_dir / name).read_text() != text]
        for name in changed:
            print(f"gen_protocol: {args.out_dir / name} is out of date", file=sys.stderr)
        for name in stale:
            print(f"gen_protocol: {args.out_dir / name} is not generated any more",
                  file=sys.stderr)
        if changed or stale:
            print(f"gen_protocol: checked against the schemas in {source}; run "
                  "`python tools/gen_protocol.py` and commit the result", file=sys.stderr)
            return 1
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = args.out_dir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    for name in stale:
        (args.out_dir / name).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
