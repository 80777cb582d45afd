#!/usr/bin/env python3
"""Runs the README's grpcurl examples against a fresh `pos up --demo`.

grpcurl itself is not needed: this script is a small grpcurl-compatible client
built on the stock Python gRPC packages (grpcio, grpcio-reflection; protobuf), with
grpcurl_emulation.py (its command line, reflection) and readme_streams.py (streams)
beside it.

* Takes the first ```sh block after each of the headings in HEADINGS in
  README.md (or `--readme PATH`), joining backslash-continued lines, and runs
  the blocks in that order ("## Sign up as a new owner (development provider)",
  "## Try the API with grpcurl", "## Order at a table and take payment", then
  "## Settlements and product sales")
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
  (unary or server-streaming). Unknown flags and other forms (e.g. `describe`)
  are failures.
* A server-streaming call is what the README runs in a second terminal: it runs in
  the background from its line to the end of its block, printing each message
  as grpcurl does, while the block's later lines run; the comments above it name
  the messages it must print (see readme_streams.py).
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
from google.protobuf import json_format, message_factory

# pos_harness.py sits next to this script; sys.path[0] is normally this folder
# already, but not under `python -P` / PYTHONSAFEPATH.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpcurl_emulation import CommandError, Grpcurl, Reflection  # noqa: E402
from pos_harness import Checks, run_with_pos, stop_pos  # noqa: E402
from readme_streams import Watch, expected_messages, say  # noqa: E402

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
    "## Settlements and product sales",
]
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
    say(output)
    if expected_code is not None:
        return False, f"expected {expected_code}, but the call succeeded", output
    return True, "", output


def request_of(cmd, method, reflection):
    """The request message of `cmd` (from -d, else empty) for `method`."""
    request = message_factory.GetMessageClass(method.input_type)()
    if cmd.data is not None:
        try:
            json_format.Parse(cmd.data, request, descriptor_pool=reflection.pool)
        except json_format.ParseError as err:
            raise CommandError(f"-d is not a valid {method.input_type.full_name}: {err}") from None
    return request


def server_streaming(cmd, reflection):
    """Whether `cmd` calls a server-streaming method."""
    if cmd.verb != "call":
        return False
    _, method = reflection.method(cmd.symbol)
    if method.client_streaming:
        raise CommandError(f"{cmd.symbol} is a client-streaming method; not supported")
    return method.server_streaming


def call(cmd, reflection, channel):
    service, method = reflection.method(cmd.symbol)
    if method.client_streaming or method.server_streaming:
        raise CommandError(
            f"{cmd.symbol} is a streaming method: only a line of its own can run it"
        )
    request = request_of(cmd, method, reflection)
    response_class = message_factory.GetMessageClass(method.output_type)
    stub = channel.unary_unary(
        f"/{service}/{method.name}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_class.FromString,
    )
    response = stub(request, metadata=cmd.headers or None, timeout=RPC_TIMEOUT)
    return json_format.MessageToJson(response, indent=2, descriptor_pool=reflection.pool)


def start_watch(entry, cmd, reflection, channel):
    """Starts the server-streaming call of `entry` in the background, as in a second
    terminal; returns the Watch once its first message came, else raises."""
    expected_code, _ = expectation(entry.comments)
    if expected_code is not None:
        raise CommandError(f"a streaming call cannot be expected to fail ({expected_code})")
    expected = expected_messages(entry.comments)
    if not expected:
        raise CommandError(
            "the comments above a streaming call must name what it prints, "
            "as backticked grpcurl output such as `{}`"
        )
    service, method = reflection.method(cmd.symbol)
    request = request_of(cmd, method, reflection)
    response_class = message_factory.GetMessageClass(method.output_type)
    stub = channel.unary_stream(
        f"/{service}/{method.name}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_class.FromString,
    )
    responses = stub(request, metadata=cmd.headers or None)
    return Watch(entry.label(), responses, reflection.pool, expected)


def run_grpcurl(text, variables, expected_code, expected_details, reflection, channel):
    """Substitutes, parses and runs one grpcurl command line (printing it and its
    output); returns (ok, detail, output)."""
    say(f"\n$ {text}")
    cmd = Grpcurl(shlex.split(substitute(text, variables)))
    return run_command(cmd, reflection, channel, expected_code, expected_details)


def run_line(entry, variables, reflection, channel, watches):
    """Runs one grpcurl line: (ok, detail), or None for a streaming call that is now
    running in the background (appended to `watches`, judged at the block's end)."""
    cmd = Grpcurl(shlex.split(substitute(entry.text, variables)))
    if server_streaming(cmd, reflection):
        say(f"\n$ {entry.text} &   # in a second terminal")
        watch = start_watch(entry, cmd, reflection, channel)
        ok, detail = watch.first_message()
        if not ok:
            watch.stop()
            return False, detail
        watches.append((watch, detail))
        return None
    expected_code, expected_details = expectation(entry.comments)
    return run_grpcurl(
        entry.text, variables, expected_code, expected_details, reflection, channel
    )[:2]


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
            watches = []  # (Watch, detail of its start): streams of this block
            try:
                for entry in block.entries:
                    result = run_entry(entry, variables, demo_json, reflection, channel, watches)
                    if result is not None:
                        checks.check(entry.label(), *result)
            finally:
                # The block is over: the second terminal's streams are judged and stopped.
                for watch, started in watches:
                    ok, detail = watch.finish()
                    checks.check(watch.label, ok, f"{started}; {detail}")


def run_entry(entry, variables, demo_json, reflection, channel, watches):
    """(ok, detail) of one line, or None for a stream judged at the block's end."""
    try:
        if ASSIGNMENT.match(entry.text):
            return run_assignment(entry, variables, demo_json, reflection, channel)
        return run_line(entry, variables, reflection, channel, watches)
    except CommandError as err:
        return False, str(err)
    except ValueError as err:  # shlex, json
        return False, f"cannot parse: {err}"
    except Exception as err:  # noqa: BLE001 - this line fails; go on with the rest
        return False, f"unexpected error: {type(err).__name__}: {err}"


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
