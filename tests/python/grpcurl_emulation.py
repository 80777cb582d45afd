"""A grpcurl stand-in for readme_examples.py: the command line as grpcurl reads it
(`Grpcurl`), and the server's services and messages as grpcurl learns them, by
server reflection (`Reflection`: v1alpha, else v1).
"""

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

# `pos up`'s default address, which the README's commands use.
README_ADDRESSES = {"127.0.0.1:8080", "localhost:8080"}


class CommandError(Exception):
    """The command cannot be run as written (bad syntax, unknown flag, ...)."""


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
            print("v1alpha reflection unimplemented; using grpc.reflection.v1", flush=True)
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
