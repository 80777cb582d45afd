#!/usr/bin/env python3
"""Runs the README's grpcurl examples against a fresh `pos up --demo`.

grpcurl itself is not needed: this script is a small grpcurl-compatible client
built on the stock Python gRPC packages (grpcio, grpcio-reflection; protobuf).

* Takes the first ```sh block after each of the headings in HEADINGS in
  README.md (or `--readme PATH`), joining backslash-continued lines, and runs
  the blocks in that order ("## Sign up as a new owner (development provider)",
  "## Try the API with grpcurl", then "## Order at a table and take payment")
  against one server. Shell variables are
  per block, as if each block were pasted into a fresh shell.
* `NAME=$(jq -r EXPR pos-data/demo.json)` lines are evaluated against the
  demo.json of the server started here.
* `NAME=$(grpcurl ARGS | jq -r EXPR)` lines (the pipe may follow a
  backslash-newline) run the grpcurl call, take its response as grpcurl prints
  it (protobuf JSON: lowerCamelCase names, int64 as strings, enums as names,
  default values omitted) and evaluate EXPR on it. The call must succeed and
  EXPR must find a non-null value.
* EXPR is a simple jq path, quoted or not: `.key`, `.a.b`, `.a[0].b`. As with
  `jq -r`, a string is assigned without quotes and a number as its digits.
* `$NAME` / `${NAME}` in later lines of the same block are replaced by the value
  before the line is split into words (so also inside "...\"$NAME\"..." JSON);
  a value with whitespace, quotes or backslashes is refused.
* Every other non-comment line must be a `grpcurl` command; anything else is a
  failure, so the README cannot drift into untested commands.
* Supported grpcurl syntax: `-plaintext`, `-H 'key: value'` (repeatable),
  `-d JSON`, then the address, then `list [SERVICE]` or `package.Service/Method`
  (unary). Unknown flags and other forms (e.g. `describe`) are failures.
* Starts `<pos-bin> up --demo --listen 127.0.0.1:0 --data-dir <tmp>`, waits for
  `listening on HOST:PORT`, and runs every command against that address in
  place of the README's 127.0.0.1:8080.
* A command must succeed, unless the `#` comment lines directly above it (since
  the previous command) name a gRPC status code (e.g. INVALID_ARGUMENT): then it
  must fail with exactly that code (an assignment must always succeed). Where a comment also names a
  `google.rpc.<Detail>` type and googleapis-common-protos is installed, the
  `grpc-status-details-bin` trailer must carry that detail.
* Stops the server with SIGTERM and removes the temp dir.

Prints `readme-examples: N passed, M failed` last (one check per command or
assignment); exits 0 only if all passed and at least one grpcurl command was found.
"""

import argparse
import json
import os
import re
import shlex
import sys
from pathlib import Path

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

# pos_harness.py sits next to this script; sys.path[0] is normally this folder
# already, but not under `python -P` / PYTHONSAFEPATH.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pos_harness import Checks, run_with_pos, stop_pos  # noqa: E402

try:  # optional: decodes google.rpc.Status details (ErrorInfo, BadRequest, ...)
    from google.rpc import error_details_pb2 as _error_details_pb2  # noqa: F401
    from google.rpc import status_pb2

    HAVE_RPC_PROTOS = True
except ImportError:
    status_pb2 = None
    HAVE_RPC_PROTOS = False

# The README sections whose first ```sh block is run, in this order.
HEADINGS = [
    "## Sign up as a new owner (development provider)",
    "## Try the API with grpcurl",
    "## Order at a table and take payment",
]
README_ADDRESSES = {"127.0.0.1:8080", "localhost:8080"}
README_DEMO_JSON = "pos-data/demo.json"
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=\$\((.*)\)$")
GRPCURL_WORD = re.compile(r"^(?:grpcurl|[A-Za-z_][A-Za-z0-9_]*=\$\(grpcurl)\s")
JQ_PATH = re.compile(r"^(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*)+$")
JQ_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
STATUS_CODES = {code.name for code in grpc.StatusCode if code != grpc.StatusCode.OK}
RPC_DETAIL = re.compile(r"\bgoogle\.rpc\.([A-Z][A-Za-z]*)\b")
RPC_TIMEOUT = 10
PREFIX = "readme-examples"


class ReadmeError(Exception):
    pass


class CommandError(Exception):
    """The command cannot be run as written (bad syntax, unknown flag, ...)."""


# --------------------------------------------------------------------------- README


class Line:
    """One logical line of an sh block: an assignment or a grpcurl command."""

    def __init__(self, lineno, text, comments):
        self.lineno = lineno
        self.text = text
        self.comments = comments

    def label(self):
        return f"README:{self.lineno}: {self.text}"


class Block:
    """The sh block of one README section: its lines, and the lines it rejects."""

    def __init__(self, heading, lineno, entries, errors):
        self.heading = heading
        self.lineno = lineno
        self.entries = entries
        self.errors = errors

    def commands(self):
        """How many lines run a grpcurl command (assignments included)."""
        return sum(1 for e in self.entries if GRPCURL_WORD.search(e.text))


def sh_block(lines, heading):
    """(first line number, lines) of the first ```sh block after `heading`."""
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    except StopIteration:
        raise ReadmeError(f"no heading {heading!r}") from None
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith("## "):
            break
        if stripped == "```sh":
            for j in range(i + 1, len(lines)):
                if lines[j].strip().startswith("```"):
                    return i + 2, lines[i + 1 : j]
            raise ReadmeError(f"the ```sh block at line {i + 1} is not closed")
    raise ReadmeError(f"no ```sh block in the section {heading!r}")


def parse_block(lines, heading):
    """The Block of `heading`: assignments and grpcurl commands with their
    comments, and a message for every other non-comment line."""
    first_lineno, raw = sh_block(lines, heading)
    logical = []  # (line number, text)
    pending, pending_lineno = "", None
    for offset, line in enumerate(raw):
        lineno = first_lineno + offset
        if pending_lineno is None:
            pending_lineno = lineno
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        logical.append((pending_lineno, (pending + line.strip()).strip()))
        pending, pending_lineno = "", None
    if pending_lineno is not None:
        raise ReadmeError(f"line {pending_lineno} ends the block with a backslash")

    entries, errors, comments = [], [], []
    for lineno, text in logical:
        if not text:
            continue
        if text.startswith("#"):
            comments.append(text.lstrip("#").strip())
            continue
        if ASSIGNMENT.match(text) or text.split(maxsplit=1)[0] == "grpcurl":
            entries.append(Line(lineno, text, comments))
        else:
            errors.append(
                f"README:{lineno}: not a grpcurl command, NAME=$(jq -r ...) or "
                f"NAME=$(grpcurl ... | jq -r ...) line: {text}"
            )
        comments = []
    return Block(heading, first_lineno, entries, errors)


def parse_readme(readme_text):
    """(blocks in HEADINGS order, errors): a section that cannot be read is an
    error and has no block; the other sections still run."""
    lines = readme_text.splitlines()
    blocks, errors = [], []
    for heading in HEADINGS:
        try:
            blocks.append(parse_block(lines, heading))
        except ReadmeError as err:
            errors.append(str(err))
    return blocks, errors


def expectation(comments):
    """(status code name or None, google.rpc detail names) named in the comments."""
    text = " ".join(comments)
    words = re.findall(r"\b[A-Z][A-Z_]+\b", text)
    codes = sorted({word for word in words if word in STATUS_CODES})
    if len(codes) > 1:
        raise CommandError(f"comments name several status codes {codes}; expected one")
    return (codes[0] if codes else None), sorted(set(RPC_DETAIL.findall(text)))


def split_pipeline(text):
    """The parts of `text` between unquoted `|`s, stripped (sh quoting rules)."""
    parts, current, quote, i = [], [], None, 0
    while i < len(text):
        char = text[i]
        if quote == "'":
            if char == "'":
                quote = None
        elif char == "\\" and i + 1 < len(text):
            current.append(char)
            i += 1
            char = text[i]
        elif quote == '"':
            if char == '"':
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "|":
            if text[i + 1 : i + 2] == "|":
                raise CommandError("`||` is not supported")
            parts.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    if quote is not None:
        raise CommandError(f"unterminated {quote} quote")
    parts.append("".join(current).strip())
    return parts


def jq_raw(value, expr, source):
    """`jq -r EXPR` of a JSON document (already parsed) as the shell would see it."""
    if not JQ_PATH.match(expr):
        raise CommandError(
            f"unsupported jq expression {expr!r} (only paths such as .a.b and .a[0].b)"
        )
    path = ""
    for step in JQ_STEP.finditer(expr):
        key, index = step.group(1), step.group(2)
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            if isinstance(value, dict):
                have = ", ".join(f".{k}" for k in value) or "no fields"
            elif isinstance(value, list):
                have = f"an array of {len(value)}"
            else:
                have = f"the {type(value).__name__} {json.dumps(value)}"
            raise CommandError(
                f"jq {expr}: {source} has no {step.group(0)} after {path or '.'} (found {have})"
            )
        path += step.group(0)
    if value is None:
        raise CommandError(f"jq {expr}: {path} is null in {source}")
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2)
    return json.dumps(value)  # numbers as their digits, true / false


def parse_jq(text):
    """EXPR and the rest of the arguments of a `jq -r EXPR [FILE]` command."""
    try:
        argv = shlex.split(text)
    except ValueError as err:
        raise CommandError(f"cannot parse {text!r}: {err}") from None
    if len(argv) < 3 or argv[0] != "jq" or argv[1] not in ("-r", "--raw-output"):
        raise CommandError(f"expected `jq -r EXPR`, got `{text}`")
    return argv[2], argv[3:]


def assignment_name(text):
    return ASSIGNMENT.match(text).group(1)


def eval_file_assignment(inner, demo_json):
    """`jq -r EXPR pos-data/demo.json` -> the value."""
    expr, files = parse_jq(inner)
    if files != [README_DEMO_JSON]:
        raise CommandError(f"expected $(jq -r EXPR {README_DEMO_JSON}), got $({inner})")
    return jq_raw(json.loads(Path(demo_json).read_text()), expr, "demo.json")


def substitute(text, variables):
    if "$(" in text or "`" in text:
        raise CommandError("command substitution is not supported in grpcurl lines")

    def replace(match):
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise CommandError(f"${name} is not set by an earlier line of this block")
        value = variables[name]
        if value is None:
            raise CommandError(f"${name} is not set: its assignment failed")
        if re.search(r"[\s'\"\\]", value):
            raise CommandError(
                f"${name} holds whitespace, quotes or backslashes, which this runner "
                "cannot substitute faithfully"
            )
        return value

    return VARIABLE.sub(replace, text)


class Grpcurl:
    """A parsed grpcurl command line."""

    def __init__(self, argv):
        if not argv or argv[0] != "grpcurl":
            raise CommandError("not a grpcurl command")
        self.plaintext = False
        self.headers = []
        self.data = None
        args = argv[1:]
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "--"):
            flag, value = args[i].lstrip("-"), None
            if "=" in flag:
                flag, value = flag.split("=", 1)
            if flag == "plaintext":
                if value not in (None, "true", "false"):
                    raise CommandError(f"bad value for -plaintext: {value!r}")
                self.plaintext = value != "false"
            elif flag in ("H", "d"):
                if value is None:
                    i += 1
                    if i == len(args):
                        raise CommandError(f"-{flag} needs a value")
                    value = args[i]
                if flag == "H":
                    if ":" not in value:
                        raise CommandError(f"-H {value!r} is not 'key: value'")
                    key, val = value.split(":", 1)
                    self.headers.append((key.strip().lower(), val.lstrip()))
                else:
                    if value.startswith("@"):
                        raise CommandError("-d @ (read from stdin) is not supported")
                    self.data = value
            else:
                raise CommandError(
                    f"unknown grpcurl flag {args[i]!r} (supported: -plaintext, -H, -d)"
                )
            i += 1
        if i < len(args) and args[i] == "--":
            i += 1
        positional = args[i:]
        if not positional:
            raise CommandError("missing the server address")
        self.address = positional[0]
        rest = positional[1:]
        if not rest:
            raise CommandError("missing `list` or a method name")
        self.verb, self.symbol = rest[0], None
        if self.verb == "describe":  # not used by the README, so not implemented
            raise CommandError(
                "grpcurl `describe` is not supported "
                "(supported: `list [SERVICE]` and unary `package.Service/Method` calls)"
            )
        if self.verb == "list":
            if len(rest) > 2:
                raise CommandError(f"unexpected arguments {rest[2:]}")
            self.symbol = rest[1] if len(rest) == 2 else None
        else:
            if len(rest) > 1:
                raise CommandError(f"unexpected arguments after the method: {rest[1:]}")
            self.verb, self.symbol = "call", rest[0]
        if self.data is not None and self.verb != "call":
            raise CommandError(f"-d makes no sense with `{self.verb}`")
        if not self.plaintext:
            raise CommandError("without -plaintext grpcurl uses TLS, but `pos up` serves plaintext")
        if self.address not in README_ADDRESSES:
            raise CommandError(f"address {self.address!r} is not `pos up`'s default 127.0.0.1:8080")


# ---------------------------------------------------------------------- reflection


class _V1ReflectionStub:
    """grpc.reflection.v1 with the v1alpha message classes (same wire format)."""

    def __init__(self, channel):
        self.ServerReflectionInfo = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )


class Reflection:
    def __init__(self, channel):
        self.db = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.db)
        self._services = None
        try:
            self._services = list(self.db.get_services())
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            print(f"{PREFIX}: v1alpha reflection unimplemented; using grpc.reflection.v1")
            self.db._stub = _V1ReflectionStub(channel)

    def services(self):
        if self._services is None:
            self._services = list(self.db.get_services())
        return sorted(self._services)

    def find_symbol(self, symbol):
        """(kind, descriptor) for a service, method, message or enum name."""
        symbol = symbol.lstrip(".").replace("/", ".")
        # Loads the defining file (and its imports) into the pool, so that the
        # lookups below hit the pool's own tables. KeyError: the Python database
        # does not index method names (handled below); TypeError: see _lookup.
        _lookup(self.pool.FindFileContainingSymbol, symbol)
        for kind, find in [
            ("service", self.pool.FindServiceByName),
            ("message", self.pool.FindMessageTypeByName),
            ("enum", self.pool.FindEnumTypeByName),
        ]:
            desc = _lookup(find, symbol)
            if desc is not None:
                return kind, desc
        if "." in symbol:
            service, method = symbol.rsplit(".", 1)
            svc = _lookup(self.pool.FindServiceByName, service)
            if svc is not None and method in svc.methods_by_name:
                return "method", svc.methods_by_name[method]
        raise CommandError(f"symbol {symbol!r} not found via reflection")

    def method(self, name):
        if "/" in name:
            service, method = name.rsplit("/", 1)
        elif "." in name:
            service, method = name.rsplit(".", 1)
        else:
            raise CommandError(f"{name!r} is not package.Service/Method")
        service = service.lstrip(".")
        svc = _lookup(self.pool.FindServiceByName, service)
        if svc is None:
            raise CommandError(f"service {service!r} not found via reflection")
        desc = svc.methods_by_name.get(method)
        if desc is None:
            raise CommandError(f"service {service!r} has no method {method!r}")
        return service, desc


def _lookup(find, name):
    """find(name), or None if the pool has no such symbol of that kind.

    A miss falls back to the reflection database; when the server answers with a
    file the pool already holds, the C++/upb pool raises TypeError (duplicate
    file) rather than KeyError.
    """
    try:
        return find(name)
    except (KeyError, TypeError):
        return None


# -------------------------------------------------------------------------- running


def status_details(err):
    """Lines describing the grpc-status-details-bin trailer, and its detail type names."""
    raw = None
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            raw = value
    if raw is None:
        return ["  Details: (no grpc-status-details-bin)"], None
    if not HAVE_RPC_PROTOS:
        return [
            f"  Details: grpc-status-details-bin present ({len(raw)} bytes; "
            "install googleapis-common-protos to decode)"
        ], None
    status = status_pb2.Status.FromString(raw)
    lines, types = ["  Details:"], []
    for n, detail in enumerate(status.details, 1):
        types.append(detail.type_url.rsplit("/", 1)[-1])
        try:
            body = json_format.MessageToJson(detail, indent=None)
        except (TypeError, KeyError):
            body = f'{{"@type": "{detail.type_url}", ...}} (unknown type)'
        lines.append(f"  {n})\t{body}")
    return lines, types


def run_command(cmd, reflection, channel, expected_code, expected_details):
    """Runs one grpcurl command and prints its output; returns (ok, detail, output),
    where output is what grpcurl would print on stdout (None if the call failed)."""
    try:
        if cmd.verb == "list":
            if cmd.symbol is None:
                output = "\n".join(reflection.services())
            else:
                kind, svc = reflection.find_symbol(cmd.symbol)
                if kind != "service":
                    raise CommandError(f"{cmd.symbol!r} is a {kind}, not a service")
                output = "\n".join(m.full_name for m in svc.methods)
        else:
            output = call(cmd, reflection, channel)
    except grpc.RpcError as err:
        code = err.code().name if err.code() else "UNKNOWN"
        print("ERROR:")
        print(f"  Code: {code}")
        print(f"  Message: {err.details()}")
        detail_lines, detail_types = status_details(err)
        print("\n".join(detail_lines), flush=True)
        if expected_code is None:
            return False, f"failed with {code}: {err.details()}", None
        if code != expected_code:
            return False, f"expected {expected_code}, got {code}: {err.details()}", None
        if detail_types is not None:
            missing = [d for d in expected_details if f"google.rpc.{d}" not in detail_types]
            if missing:
                names = ", ".join(f"google.rpc.{d}" for d in missing)
                return False, f"{code} as expected, but details lack {names}", None
        note = "" if detail_types is None else f" with {', '.join(detail_types) or 'no details'}"
        return True, f"{code} as expected{note}", None
    print(output, flush=True)
    if expected_code is not None:
        return False, f"expected {expected_code}, but the call succeeded", output
    return True, "", output


def call(cmd, reflection, channel):
    service, method = reflection.method(cmd.symbol)
    if method.client_streaming or method.server_streaming:
        raise CommandError(f"{cmd.symbol} is a streaming method; only unary calls are supported")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    request = request_class()
    if cmd.data is not None:
        try:
            json_format.Parse(cmd.data, request, descriptor_pool=reflection.pool)
        except json_format.ParseError as err:
            raise CommandError(f"-d is not a valid {method.input_type.full_name}: {err}") from None
    stub = channel.unary_unary(
        f"/{service}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    response = stub(request, metadata=cmd.headers or None, timeout=RPC_TIMEOUT)
    return json_format.MessageToJson(response, indent=2, descriptor_pool=reflection.pool)


def run_grpcurl(text, variables, expected_code, expected_details, reflection, channel):
    """Substitutes, parses and runs one grpcurl command line (printing it and its
    output); returns (ok, detail, output)."""
    print(f"\n$ {text}", flush=True)
    cmd = Grpcurl(shlex.split(substitute(text, variables)))
    return run_command(cmd, reflection, channel, expected_code, expected_details)


def run_assignment(entry, variables, demo_json, reflection, channel):
    """Evaluates NAME=$(...); returns (ok, detail) and sets variables[NAME]
    (None when it fails, so later uses say why)."""
    name = assignment_name(entry.text)
    variables[name] = None
    inner = ASSIGNMENT.match(entry.text).group(2)
    expected_code, _ = expectation(entry.comments)
    if expected_code is not None:
        raise CommandError(
            f"the comments above name {expected_code}, but an assignment's command must succeed"
        )
    parts = split_pipeline(inner)
    if len(parts) == 1:
        value = eval_file_assignment(inner, demo_json)
        source = README_DEMO_JSON
    elif len(parts) == 2 and parts[0].split()[:1] == ["grpcurl"]:
        expr, files = parse_jq(parts[1])
        if files:
            raise CommandError(f"jq after a pipe reads stdin; unexpected {files}")
        ok, detail, output = run_grpcurl(parts[0], variables, None, [], reflection, channel)
        if not ok:
            return False, f"grpcurl {detail}; ${name} not set"
        if output is None or not output.lstrip().startswith("{"):
            raise CommandError("only a method call's JSON response can be piped into jq")
        value = jq_raw(json.loads(output), expr, "the response")
        source = "the response"
    else:
        raise CommandError(
            f"expected $(jq -r EXPR {README_DEMO_JSON}) or $(grpcurl ... | jq -r EXPR), "
            f"got $({inner})"
        )
    variables[name] = value
    shown = value if len(value) <= 20 else f"{value[:12]}... ({len(value)} chars)"
    return True, f"${name} = {shown} from {source}"


def run_readme(checks, blocks, target, demo_json):
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
        print(f"{PREFIX}: connected to {target}")
        reflection = Reflection(channel)
        for block in blocks:
            print(f"\n{PREFIX}: === {block.heading} (README:{block.lineno}) ===", flush=True)
            variables = {}  # a fresh shell per block
            for entry in block.entries:
                try:
                    if ASSIGNMENT.match(entry.text):
                        ok, detail = run_assignment(
                            entry, variables, demo_json, reflection, channel
                        )
                    else:
                        expected_code, expected_details = expectation(entry.comments)
                        ok, detail, _ = run_grpcurl(
                            entry.text, variables, expected_code, expected_details,
                            reflection, channel,
                        )
                except CommandError as err:
                    ok, detail = False, str(err)
                except ValueError as err:  # shlex, json
                    ok, detail = False, f"cannot parse: {err}"
                except Exception as err:  # noqa: BLE001 - this line fails; go on with the rest
                    ok, detail = False, f"unexpected error: {type(err).__name__}: {err}"
                checks.check(entry.label(), ok, detail)


# ---------------------------------------------------------------------- pos process


def stop(proc):
    """SIGTERM, then SIGKILL after 10 s; a problem here is reported but not a check."""
    if proc.poll() is not None:
        print(f"{PREFIX}: note: pos had already exited with code {proc.returncode}")
        return
    code = stop_pos(proc)
    if code is None:
        print(f"{PREFIX}: note: pos ignored SIGTERM for 10 s; killed")
    else:
        print(f"{PREFIX}: pos stopped with SIGTERM (exit code {code})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos-bin", required=True, help="path to the built pos binary")
    parser.add_argument(
        "--readme",
        default=str(Path(__file__).resolve().parents[2] / "README.md"),
        help="README to take the examples from (default: the repository's README.md)",
    )
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    args = parser.parse_args()

    checks = Checks(PREFIX)
    try:
        blocks, errors = parse_readme(Path(args.readme).read_text())
    except OSError as err:
        checks.check(f"parse {args.readme}", False, str(err))
        blocks, errors = [], []
    for error in errors:
        checks.check(f"parse {args.readme}", False, error)
    for block in blocks:
        for error in block.errors:
            checks.check(error, False)
        print(
            f"{PREFIX}: {len(block.entries)} line(s), {block.commands()} grpcurl command(s) "
            f"in {block.heading!r} (README:{block.lineno})",
            flush=True,
        )
    commands = sum(block.commands() for block in blocks)
    if not commands and not checks.failed:
        checks.check(f"grpcurl commands in {args.readme}", False, "none found")

    if commands:

        def body(proc, host, port, data_dir):
            run_readme(checks, blocks, f"{host}:{port}", os.path.join(data_dir, "demo.json"))
            stop(proc)

        run_with_pos(checks, args.pos_bin, ["--demo"], body, args.startup_timeout)

    checks.summary()
    return 0 if checks.failed == 0 and commands else 1


if __name__ == "__main__":
    sys.exit(main())
