#!/usr/bin/env python3
"""Independent gRPC client check for the `pos` binary.

Starts `<pos-bin> up --listen 127.0.0.1:0 --data-dir <tmp>`, waits for the
`listening on HOST:PORT` line on its stdout, then, using only the stock Python
gRPC packages (grpcio, grpcio-reflection, grpcio-health-checking):

* lists services through server reflection and expects `pos.v1.StoreService`
  and `grpc.health.v1.Health`;
* calls grpc.health.v1.Health/Check for "" and "pos.v1.StoreService" and
  expects SERVING;
* sends SIGTERM and expects the process to exit within 10 s.

Prints `python-client: N passed, M failed` last; exits 0 only if all passed.
"""

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

# pos_harness.py sits next to this script; sys.path[0] is normally this folder
# already, but not under `python -P` / PYTHONSAFEPATH.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pos_harness import Checks, run_with_pos, stop_pos  # noqa: E402

PREFIX = "python-client"
EXPECTED_SERVICES = ["pos.v1.StoreService", "grpc.health.v1.Health"]
HEALTH_SERVICES = ["", "pos.v1.StoreService"]
RPC_TIMEOUT = 10


def list_services(channel):
    """Names from ServerReflectionInfo list_services (v1alpha, then v1)."""
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    try:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([request]), timeout=RPC_TIMEOUT)
        return [s.name for r in responses for s in r.list_services_response.service]
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise
    # grpcio-reflection only ships v1alpha stubs; the v1 messages are identical
    # on the wire, so call the v1 method with the same message classes.
    print(f"{PREFIX}: v1alpha reflection unimplemented; trying grpc.reflection.v1")
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = call(iter([request]), timeout=RPC_TIMEOUT)
    return [s.name for r in responses for s in r.list_services_response.service]


def run_checks(checks, host, port):
    target = f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
        print(f"{PREFIX}: connected to {target}")

        try:
            services = list_services(channel)
            print(f"{PREFIX}: reflection lists {len(services)} services:")
            for name in sorted(services):
                print(f"    {name}")
            for name in EXPECTED_SERVICES:
                checks.check(f"reflection lists {name}", name in services)
        except grpc.RpcError as err:
            for name in EXPECTED_SERVICES:
                checks.check(f"reflection lists {name}", False, f"{err.code()}: {err.details()}")

        health = health_pb2_grpc.HealthStub(channel)
        for service in HEALTH_SERVICES:
            label = f"health Check({service!r}) is SERVING"
            try:
                reply = health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT
                )
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                checks.check(label, reply.status == health_pb2.HealthCheckResponse.SERVING, status)
            except grpc.RpcError as err:
                checks.check(label, False, f"{err.code()}: {err.details()}")


def stop(proc, checks):
    if proc.poll() is not None:
        checks.check("pos still running before SIGTERM", False, f"exit code {proc.returncode}")
        return
    code = stop_pos(proc)
    if code is None:
        checks.check("pos exits within 10 s of SIGTERM", False, "killed with SIGKILL")
    else:
        checks.check("pos exits within 10 s of SIGTERM", True, f"exit code {code}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos-bin", required=True, help="path to the built pos binary")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    args = parser.parse_args()

    checks = Checks(PREFIX)

    def body(proc, host, port, _data_dir):
        run_checks(checks, host, port)
        stop(proc, checks)

    run_with_pos(checks, args.pos_bin, [], body, args.startup_timeout)
    checks.summary()
    return 0 if checks.failed == 0 and checks.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
