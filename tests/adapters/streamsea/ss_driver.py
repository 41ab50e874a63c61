"""stream-sea-client 0.7.0 as a test peer: run under the client's venv, never imported by the suite.

``tests/support/sspeer.py`` runs this script with the venv's python (stream-sea-client 0.7.0
installed with ``--no-deps``, plus current ``requests`` and ``websockets``) and reads the one
JSON line it prints. It imports only the client and the standard library (``requests`` and
``websockets`` only through the client, and for their versions), and connects only to the
server it is given.

Subcommands:

``probe``
    What the installed client offers: its package's public names (it has no ``__all__``: the
    package star-imports its three modules) and each module's own public names, ``FieldType``'s
    members, the signatures and parameters of the HTTP functions, ``SchemaDefinition`` and its
    methods and ``StreamSeaConnection``, the exceptions' bases, and the installed versions of
    stream-sea-client, requests and websockets.
``calls --host H --port P --client-id ID --client-secret S [--stream NAME] [--count N]``
    Every call of the client against a stream-sea server at H:P (plain HTTP and WS), each in its
    own try/except and each under ``--timeout`` seconds, as a user of 0.7.0 must make them
    (PEERS.md 2.2): ``define_stream`` (a two-field schema, ``fields=[]`` passed), then
    ``describe_stream``, ``get_schema_versions_vector`` (the stream and an unknown one),
    ``get_schema_version`` (after setting the module global ``stream_sea_client.api.client_id``,
    which it reads by mistake), ``subscribe`` (connect, authenticate, subscribe to the stream,
    then collect N payloads) and ``publish`` (N payloads, after setting the module global
    ``stream_sea_client.api.api_base_url`` to ``http://H:P/api/v1``, which it reads by
    mistake). ``publish`` runs once the subscription is in place, so the payloads it sends are
    the ones ``subscribe`` collects; when subscribing fails it runs afterwards on its own.
    ``publish`` returns None at once and POSTs on the client's thread pool: the step waits for
    each POST (the pool is wrapped to keep the results ``publish`` throws away) and reports
    their statuses, or the first one's exception. Prints one object, step name ->
    ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "<Type>: <message>"}``.

A new subcommand is a function ``(args) -> dict`` registered in ``main``.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import importlib.metadata
import inspect
import json
import logging
import os
import sys
import threading
import time

import stream_sea_client
import stream_sea_client.api
import stream_sea_client.stream_sea_connection
import stream_sea_client.stream_sea_schema_definition
import stream_sea_client.utils
from stream_sea_client import (
    CredentialsError,
    FieldType,
    ProtocolError,
    SchemaDefinition,
    StreamSeaConnection,
    define_stream,
    describe_stream,
    get_schema_version,
    get_schema_versions_vector,
    publish,
)

DISTRIBUTIONS = ("stream-sea-client", "requests", "websockets")
MODULES = (
    stream_sea_client.api,
    stream_sea_client.stream_sea_connection,
    stream_sea_client.stream_sea_schema_definition,
    stream_sea_client.utils,
)
SIGNED = {
    "publish": publish,
    "define_stream": define_stream,
    "describe_stream": describe_stream,
    "get_schema_version": get_schema_version,
    "get_schema_versions_vector": get_schema_versions_vector,
    "SchemaDefinition": SchemaDefinition,
    "SchemaDefinition.add_field": SchemaDefinition.add_field,
    "SchemaDefinition.add_child_field": SchemaDefinition.add_child_field,
    "SchemaDefinition.json_serialize": SchemaDefinition.json_serialize,
    "StreamSeaConnection": StreamSeaConnection,
    "StreamSeaConnection.subscribe": StreamSeaConnection.subscribe,
}
"""What ``probe`` reports the signature of."""
DEFAULT_TIMEOUT = 5.0
"""Seconds each step of ``calls`` may take (the server is local)."""
TEXT_LIMIT = 2000
"""Characters of a reply body a step reports."""


class DriverError(Exception):
    """The client did something this script does not expect; the message says what."""


# --- probe -------------------------------------------------------------------------------


def _public(names):
    return sorted(name for name in names if not name.startswith("_"))


def _own_names(module):
    """The public names ``module`` defines itself: not the modules, classes and functions it
    imports."""
    names = []
    for name in _public(vars(module)):
        value = getattr(module, name)
        if inspect.ismodule(value):
            continue
        if (inspect.isclass(value) or inspect.isroutine(value)) and (
            getattr(value, "__module__", None) != module.__name__
        ):
            continue
        names.append(name)
    return names


def _parameters(target):
    out = []
    for parameter in inspect.signature(target).parameters.values():
        entry = {"name": parameter.name, "kind": parameter.kind.name}
        if parameter.default is not inspect.Parameter.empty:
            entry["default"] = repr(parameter.default)
        if parameter.annotation is not inspect.Parameter.empty:
            entry["annotation"] = inspect.formatannotation(parameter.annotation)
        out.append(entry)
    return out


def probe(args):
    """What the installed client offers (see the module's docstring)."""
    del args
    exceptions = {
        cls.__name__: [base.__name__ for base in cls.__mro__[1:]]
        for cls in (ProtocolError, CredentialsError)
    }
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "versions": {name: importlib.metadata.version(name) for name in DISTRIBUTIONS},
        "all": getattr(stream_sea_client, "__all__", None),
        "public_names": _public(dir(stream_sea_client)),
        "modules": {module.__name__: _own_names(module) for module in MODULES},
        "field_type": {member.name: member.value for member in FieldType},
        "field_type_is_enum": issubclass(FieldType, enum.Enum),
        "signatures": {name: str(inspect.signature(target)) for name, target in SIGNED.items()},
        "parameters": {name: _parameters(target) for name, target in SIGNED.items()},
        "coroutines": {
            name: inspect.iscoroutinefunction(target) for name, target in SIGNED.items()
        },
        "exceptions": exceptions,
        "module_globals": {
            # What the two workarounds set: neither exists until a caller sets it.
            "api_base_url": hasattr(stream_sea_client.api, "api_base_url"),
            "client_id": hasattr(stream_sea_client.api, "client_id"),
        },
    }


# --- calls -------------------------------------------------------------------------------


def _error(exc):
    return f"{type(exc).__name__}: {exc}"


def run_step(steps, name, call, timeout):
    """Run ``call()`` on its own thread, at most ``timeout`` seconds, and record its outcome
    as ``steps[name]``; a step that overruns is abandoned on its thread."""
    outcome = {}

    def target():
        try:
            outcome.update(ok=True, result=call())
        except BaseException as exc:  # every failure is a result here
            outcome.update(ok=False, error=_error(exc))

    thread = threading.Thread(target=target, name=f"ss-driver-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        outcome = {"ok": False, "error": f"TimeoutError: {name} ran past {timeout}s"}
    steps[name] = dict(outcome)


def _response(response):
    return {"status": response.status_code, "body": response.text[:TEXT_LIMIT]}


class RecordingPool:
    """``stream_sea_client.api.pool`` with the ``AsyncResult`` of every ``apply_async`` kept:
    ``publish`` discards it and only logs a failure."""

    def __init__(self, pool):
        self.pool = pool
        self.results = []

    def apply_async(self, *args, **kwargs):
        result = self.pool.apply_async(*args, **kwargs)
        self.results.append(result)
        return result

    def __getattr__(self, name):
        return getattr(self.pool, name)


class LogRecords(logging.Handler):
    """What the client's ``publish`` logs (its only report of a failed POST)."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


class Calls:
    """The ``calls`` subcommand's steps, against one server."""

    def __init__(self, args):
        self.args = args
        self.steps = {}
        self.endpoint = {
            "remote_host": args.host,
            "remote_port": args.port,
            "secure": False,
            "client_id": args.client_id,
            "client_secret": args.client_secret,
        }
        self.log = LogRecords()
        logging.getLogger(stream_sea_client.api.__name__).addHandler(self.log)

    def run(self):
        timeout = self.args.timeout
        run_step(self.steps, "define_stream", self.define_stream, timeout)
        run_step(self.steps, "describe_stream", self.describe_stream, timeout)
        run_step(self.steps, "get_schema_versions_vector", self.versions_vector, timeout)
        run_step(self.steps, "get_schema_version", self.schema_version, timeout)
        try:
            payloads = asyncio.run(self.subscribe())
        except BaseException as exc:  # every failure is a result here
            self.steps["subscribe"] = {"ok": False, "error": _error(exc)}
        else:
            self.steps["subscribe"] = {"ok": True, "result": payloads}
        if "publish" not in self.steps:
            self.publish_step(while_subscribed=False)
        return self.steps

    def schema(self):
        # fields=[] always: without it every SchemaDefinition shares one list (PEERS.md 2.2).
        schema = SchemaDefinition(name=self.args.stream, version=1, fields=[])
        schema.add_field("seq", FieldType.INTEGER.value)
        schema.add_field("text", FieldType.STRING.value)
        return schema

    def define_stream(self):
        response = define_stream(**self.endpoint, stream=self.args.stream, schema=self.schema())
        return _response(response)

    def describe_stream(self):
        schema = describe_stream(**self.endpoint, stream=self.args.stream)
        return None if schema is None else schema.json_serialize()

    def versions_vector(self):
        streams = [self.args.stream, f"{self.args.stream}-unknown"]
        return get_schema_versions_vector(**self.endpoint, streams=streams)

    def schema_version(self):
        # The workaround: get_schema_version reads a module global client_id it never sets.
        stream_sea_client.api.client_id = self.args.client_id
        endpoint = {k: v for k, v in self.endpoint.items() if k != "client_id"}
        return get_schema_version(**endpoint, stream=self.args.stream)

    def payloads(self):
        return [{"seq": seq, "text": f"ss-driver payload {seq}"} for seq in range(self.args.count)]

    def publish(self):
        # The workaround: publish builds its URL from a module global api_base_url.
        base = f"http://{self.args.host}:{self.args.port}/api/v1"
        stream_sea_client.api.api_base_url = base
        api = stream_sea_client.api
        if not isinstance(api.pool, RecordingPool):
            api.pool = RecordingPool(api.pool)
        first = len(api.pool.results)
        returned = [
            publish(**self.endpoint, stream=self.args.stream, payload=payload)
            for payload in self.payloads()
        ]
        results = api.pool.results[first:]
        if len(results) != len(returned):
            raise DriverError(f"{len(returned)} publishes queued {len(results)} POSTs")
        deadline = time.monotonic() + self.args.timeout
        statuses = []
        for result in results:
            response = result.get(max(0.0, deadline - time.monotonic()))
            statuses.append(response.status_code)
        return {"returned": returned, "statuses": statuses, "logged": list(self.log.messages)}

    def publish_step(self, *, while_subscribed):
        run_step(self.steps, "publish", self.publish, self.args.timeout)
        if self.steps["publish"]["ok"]:
            self.steps["publish"]["result"]["while_subscribed"] = while_subscribed

    async def subscribe(self):
        timeout = self.args.timeout
        connection = StreamSeaConnection(**self.endpoint)
        await _within(connection, timeout, "connecting and authenticating")
        try:
            iterator = await _within(connection.subscribe(self.args.stream), timeout, "subscribing")
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: self.publish_step(while_subscribed=True))
            received = []
            deadline = loop.time() + timeout
            while len(received) < self.args.count:
                try:
                    payload = await asyncio.wait_for(
                        iterator.__anext__(), max(0.0, deadline - loop.time())
                    )
                except StopAsyncIteration:
                    raise DriverError(
                        f"the subscription ended after {len(received)} of {self.args.count} "
                        f"payloads: {json.dumps(received)}"
                    ) from None
                except TimeoutError:
                    raise TimeoutError(
                        f"{len(received)} of {self.args.count} payloads in {timeout}s: "
                        f"{json.dumps(received)}"
                    ) from None
                received.append(payload)
            return received
        finally:
            ws = connection.ensure_ws.result()
            await _within(ws.close(), timeout, "closing")


async def _within(awaitable, timeout, what):
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise TimeoutError(f"{what} took over {timeout}s") from None


def calls(args):
    """Every call of the client against the server at ``--host``/``--port`` (see the module's
    docstring)."""
    return Calls(args).run()


# --- main --------------------------------------------------------------------------------


def _count(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def main(argv=None):
    """Run one subcommand and print its result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("probe", help="what the installed client offers").set_defaults(run=probe)
    calling = commands.add_parser("calls", help="every call against a server at HOST:PORT")
    calling.add_argument("--host", required=True)
    calling.add_argument("--port", type=int, required=True)
    calling.add_argument("--client-id", required=True)
    calling.add_argument("--client-secret", required=True)
    calling.add_argument("--stream", default="ss-driver")
    calling.add_argument("--count", type=_count, default=3, help="payloads to publish and collect")
    calling.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds a step")
    calling.set_defaults(run=calls)
    args = parser.parse_args(argv)
    print(json.dumps(args.run(args), sort_keys=True), flush=True)
    # A step abandoned past its timeout may still hold a thread (the client's pool's, or
    # requests' with no timeout of its own): leave without waiting for it.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
