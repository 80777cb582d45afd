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
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

EXPECTED_SERVICES = ["pos.v1.StoreService", "grpc.health.v1.Health"]
HEALTH_SERVICES = ["", "pos.v1.StoreService"]
LISTENING = re.compile(r"listening on (\S+):(\d+)")
RPC_TIMEOUT = 10


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        suffix = f": {detail}" if detail else ""
        print(f"python-client: {'PASS' if ok else 'FAIL'} {name}{suffix}", flush=True)


def pump_stdout(proc, lines):
    """Echoes the server's stdout and hands each line to the main thread."""
    for line in proc.stdout:
        print(f"  [pos] {line.rstrip()}", flush=True)
        lines.put(line)
    lines.put(None)  # EOF


def wait_for_port(proc, lines, timeout):
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"no 'listening on' line within {timeout} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            code = proc.wait()
            raise RuntimeError(f"pos exited (code {code}) before printing 'listening on'")
        match = LISTENING.search(line)
        if match:
            return match.group(1), int(match.group(2))


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
    print("python-client: v1alpha reflection unimplemented; trying grpc.reflection.v1")
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
        print(f"python-client: connected to {target}")

        try:
            services = list_services(channel)
            print(f"python-client: reflection lists {len(services)} services:")
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
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
        checks.check("pos exits within 10 s of SIGTERM", True, f"exit code {code}")
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        checks.check("pos exits within 10 s of SIGTERM", False, "killed with SIGKILL")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos-bin", required=True, help="path to the built pos binary")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    args = parser.parse_args()

    checks = Checks()
    data_dir = tempfile.mkdtemp(prefix="pos-python-client-")
    proc = None
    try:
        command = [args.pos_bin, "up", "--listen", "127.0.0.1:0", "--data-dir", data_dir]
        print(f"python-client: starting {' '.join(command)}", flush=True)
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        lines = queue.Queue()
        threading.Thread(target=pump_stdout, args=(proc, lines), daemon=True).start()
        try:
            host, port = wait_for_port(proc, lines, args.startup_timeout)
        except RuntimeError as err:
            checks.check("pos starts and prints 'listening on'", False, str(err))
        else:
            run_checks(checks, host, port)
            stop(proc, checks)
    except Exception as err:  # noqa: BLE001 - report anything unexpected as a failure
        checks.check("unexpected error", False, f"{type(err).__name__}: {err}")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)

    print(f"python-client: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 and checks.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
