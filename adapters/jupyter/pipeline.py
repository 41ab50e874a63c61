"""Jupyter in pipelines: the ``jupyter`` server kind (a kernel a definition starts, sets up
and stops) and :class:`JupyterSignal`, a stage that computes a value on the kernel for
every record and emits the record with it.

Pipelines' ``[[stages]]`` take operator kinds, which plugins cannot add, so the stage is an
actor class named by its import path (``kind = "actorwire.adapters.jupyter.pipeline:
JupyterSignal"``, with ``server = "<a jupyter server>"``); an actor stage also reports the
kernel's state as its link state, for health checks.

**The kernel side.** The records waiting in the stage's mailbox (up to ``max_batch``) go to
the kernel in one ``execute``: their JSON, a loop binding each to ``variable`` (a global of the
kernel's namespace) and evaluating ``code`` for it, each value or exception kept in order,
and the list read back as JSON through a user expression. One request/reply per batch, not
per record; the cell runs silently (no history, no iopub echo).
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import structlog

from ...actors.tomlcheck import TomlChecker, read_toml
from ...pipelines.plugins import EmbeddedKind, Plugin, ServerKind
from ...pipelines.stage import StageActor
from .client import KernelClient, StateListener
from .kernel import start_kernel
from .replies import ExecutionResult
from .state import KernelDeadError, KernelState

__all__ = [
    "DEFAULT_TIMEOUT",
    "LINK_STATE",
    "EmbeddedKernel",
    "JupyterSignal",
    "KernelConfig",
    "SignalCode",
    "load_config",
    "parse_config",
    "plugin",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds one execute (a batch of records) may take before its records pass on without a
value and the kernel is interrupted."""
MAX_LOGGED_ERRORS = 100
"""Distinct errors a stage logs (each once); past that they are only counted."""

LINK_STATE: Mapping[KernelState, str] = {
    KernelState.STARTING: "CONNECTING",
    KernelState.ALIVE: "CONNECTED",
    KernelState.DEAD: "RECONNECTING",
    KernelState.RESTARTING: "RECONNECTING",
    KernelState.FAILED: "FAILED",
    KernelState.CLOSED: "CLOSED",
}
"""A kernel client's state as the LinkState name health checks use."""

log = structlog.get_logger("actorwire.jupyter")

_OUT = "__actorwire_out"
_CONFIG_KEYS = ("kernel_name", "setup", "setup_file", "startup_timeout")


# -- the server kind ------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelConfig:
    """A ``[servers.x] kind = "jupyter"``'s config: the kernel to start, the code to run on
    it once it answers (``setup``, then the file ``setup_file``; again after every restart
    of the kernel) and how long it may take to answer."""

    kernel_name: str = "python3"
    setup: str = ""
    """The code run at start: ``setup``, then the setup file's text (read at parse)."""
    setup_file: Path | None = None
    startup_timeout: float = 60.0


def parse_config(
    table: Mapping[str, Any], source: str = "<config>", base_dir: Path | None = None
) -> KernelConfig:
    """Check a jupyter server's config table; TomlError naming ``source`` and the key path.
    ``setup_file`` is relative to ``base_dir`` and read now (None: only checked to be a
    string, as ``actorwire check`` does before the definition's folder is known)."""
    check = TomlChecker(source)
    check.table(dict(table), "", _CONFIG_KEYS)
    kernel_name = check.string(table.get("kernel_name", "python3"), "kernel_name")
    if not kernel_name:
        raise check.fail("kernel_name", "must be a kernel's name (python3, or a kernelspec)")
    setup = check.string(table.get("setup", ""), "setup")
    setup_file: Path | None = None
    if "setup_file" in table:
        setup_file = Path(check.string(table["setup_file"], "setup_file"))
        if base_dir is not None:
            if not setup_file.is_absolute():
                setup_file = base_dir / setup_file
            try:
                text = setup_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise check.fail(
                    "setup_file", f"cannot read {str(setup_file)!r}: {reason}"
                ) from None
            setup = f"{setup}\n{text}" if setup else text
    try:
        compile(setup, "<setup>", "exec")
    except SyntaxError as exc:
        where = "setup_file" if setup_file is not None and base_dir is not None else "setup"
        raise check.fail(where, f"is not valid Python: {exc.msg} (line {exc.lineno})") from None
    timeout = check.positive(table.get("startup_timeout", 60.0), "startup_timeout")
    return KernelConfig(kernel_name, setup, setup_file, timeout)


def load_config(path: str | Path | None = None) -> KernelConfig:
    """A jupyter server's config from a TOML file (``setup_file`` relative to its folder);
    None: the defaults (python3, no setup)."""
    if path is None:
        return KernelConfig()
    source, _text, doc = read_toml(path)
    return parse_config(doc, source, Path(path).parent)


class EmbeddedKernel(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "jupyter"``: a kernel started (on ``host``)
    before the stages, its ``setup`` run once it answers, and shut down after the stages.

    The kernel is supervised by its client (restarted with backoff if it dies, FAILED past
    its restart limit); after a restart the setup runs again before the next signal.
    Stages with ``server = "<name>"`` get this object as ``kernel``; ``client`` is the
    running KernelClient. The port the definition settles is not used (a kernel takes
    five ports of its own)."""

    config: KernelConfig
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> KernelConfig:
        return parse_config(table, where, base_dir)

    def __init__(
        self,
        host: str,
        port: int,
        config: str | Mapping[str, Any] | None,
        store: str | None,
        base_dir: Path,
    ) -> None:
        super().__init__(host, port, config, store, base_dir)
        self.client: KernelClient | None = None
        self._lock = threading.Lock()  # one setup run at a time
        self._listeners_lock = threading.Lock()
        self._listeners: list[StateListener] = []
        self._alive = 0  # times the kernel became ALIVE
        self._set_up = 0  # the ALIVE count the setup last ran for

    def __repr__(self) -> str:
        return f"EmbeddedKernel({self.config.kernel_name!r})"

    @property
    def url(self) -> str:
        """The running kernel's connection file (else the kernel's name)."""
        client = self.client
        found = client.connection_file if client is not None else None
        return found or f"kernel {self.config.kernel_name}"

    def start(self) -> None:
        client = start_kernel(
            self.config.kernel_name,
            ip=self.host,
            state_listener=self._on_state,
            startup_timeout=self.config.startup_timeout,
        )
        try:
            seen = self._alive
            error = self._setup(client, self.config.startup_timeout)
            if error is not None:
                raise RuntimeError(f"jupyter kernel {self.config.kernel_name!r}: setup {error}")
            self._set_up = seen
        except BaseException:
            client.close()
            raise
        self.client = client

    def stop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()

    def _setup(self, client: KernelClient, timeout: float) -> str | None:
        """Run the setup code; what went wrong, or None."""
        code = self.config.setup
        if not code.strip():
            return None
        try:
            result = client.execute(code, store_history=False, allow_stdin=False, timeout=timeout)
        except (TimeoutError, KernelDeadError) as exc:
            return f"did not finish: {exc}"
        error = result.error
        if error is not None:
            return f"raised {error.ename}: {error.evalue}"
        return None

    def prepare(self, timeout: float) -> None:
        """Run the setup again if the kernel was restarted since it last ran (a new
        process has an empty namespace); called by a stage before it executes."""
        if self._set_up == self._alive:
            return
        client = self.client
        if client is None:
            return
        with self._lock:
            seen = self._alive
            if self._set_up == seen or client.state is not KernelState.ALIVE:
                return
            error = self._setup(client, timeout)
            self._set_up = seen
        if error is not None:
            log.error(
                "jupyter setup after a kernel restart failed", client=client.name, error=error
            )

    def add_listener(self, listener: StateListener) -> None:
        """Tell ``listener(state, why)`` of every change of the kernel's state (in the
        client's lifecycle actor: it must not block)."""
        with self._listeners_lock:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: StateListener) -> None:
        with self._listeners_lock:
            self._listeners = [f for f in self._listeners if f is not listener]

    def _on_state(self, state: KernelState, why: str) -> None:
        if state is KernelState.ALIVE:
            self._alive += 1
        for listener in self._listeners:
            listener(state, why)

    def stage_params(self, params: dict[str, Any], section: str) -> dict[str, Any]:
        """``kernel``: this server (its client is running once the definition starts). A
        JupyterSignal's parameters are checked now, so a definition with a bad one is
        refused before anything starts."""
        out = dict(params)
        out.setdefault("kernel", self)
        if "code" in out:
            SignalCode.from_params(out)
        return out


# -- the stage ------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """What JSON lacks: datetimes as ISO 8601, numpy values as Python ones, sets as lists."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_KERNEL_HELPERS = (
    "import json as __actorwire_json\n"
    "def __actorwire_plain(value):\n"
    "    for attr in ('tolist', 'isoformat'):\n"
    "        if hasattr(value, attr):\n"
    "            return getattr(value, attr)()\n"
    "    return repr(value)\n"
)


@dataclass(frozen=True)
class SignalCode:
    """The sans-I/O part of :class:`JupyterSignal`: checked parameters, the cell for a
    batch of records, and the values read back from its reply."""

    code: str
    variable: str = "record"
    field: str = "signal"
    error_field: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_batch: int = 500

    def __post_init__(self) -> None:
        owner = "jupyter_signal"
        if not isinstance(self.code, str) or not self.code.strip():
            raise ValueError(f"{owner}: code must be a Python expression, got {self.code!r}")
        try:
            compile(self.code, "<code>", "eval")
        except SyntaxError as exc:
            raise ValueError(
                f"{owner}: code must be one Python expression (e.g. signal(bar)), got "
                f"{self.code!r}: {exc.msg}"
            ) from None
        variable = self.variable
        if (
            not isinstance(variable, str)
            or not variable.isidentifier()
            or (keyword.iskeyword(variable))
        ):
            raise ValueError(
                f"{owner}: variable must be a Python identifier (what code calls the "
                f"record), got {variable!r}"
            )
        for param in ("field", "error_field"):
            value = getattr(self, param)
            if (value is not None or param == "field") and (
                not isinstance(value, str) or not value
            ):
                raise ValueError(f"{owner}: {param} must be a field name, got {value!r}")
        timeout = self.timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, Real)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ValueError(f"{owner}: timeout must be a number of seconds > 0, got {timeout!r}")
        batch = self.max_batch
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"{owner}: max_batch must be an integer >= 1, got {batch!r}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SignalCode:
        """From a stage's parameters (the ones this class knows; ValueError naming a bad
        one, TypeError when ``code`` is missing)."""
        known = ("code", "variable", "field", "error_field", "timeout", "max_batch")
        if "code" not in params:
            raise TypeError("jupyter_signal: missing parameter 'code'")
        return cls(**{k: params[k] for k in known if k in params})

    def encode(self, record: Any) -> str:
        """One record's JSON; TypeError or ValueError for one JSON cannot hold."""
        return json.dumps(record, default=_json_default, allow_nan=True)

    def cell(self, encoded: list[str]) -> str:
        """The cell that evaluates ``code`` for each record (JSON texts), binding it to
        ``variable``; each value or error goes to a list the user expression reads."""
        payload = "[" + ",".join(encoded) + "]"
        return (
            f"{_KERNEL_HELPERS}"
            f"{_OUT} = []\n"
            f"for {self.variable} in __actorwire_json.loads({payload!r}):\n"
            f"    try:\n"
            f"        {_OUT}.append([True, (\n{self.code}\n)])\n"
            f"    except Exception as __actorwire_exc:\n"
            f"        {_OUT}.append([False, type(__actorwire_exc).__name__ + ': ' + "
            f"str(__actorwire_exc)])\n"
        )

    @property
    def expressions(self) -> dict[str, str]:
        """The user expression that returns the results as JSON text."""
        return {_OUT: f"__actorwire_json.dumps({_OUT}, default=__actorwire_plain)"}

    @staticmethod
    def results(result: ExecutionResult, count: int) -> list[tuple[bool, Any]]:
        """``(ok, value or error text)`` per record from an execute's reply; the cell's own
        error (or an unreadable reply) for every record when there are no results."""
        error = result.error
        if error is not None:
            return [(False, f"{error.ename}: {error.evalue}")] * count
        reply = result.content.get("user_expressions", {}).get(_OUT, {})
        text = reply.get("data", {}).get("text/plain") if isinstance(reply, dict) else None
        if reply.get("status") == "error":
            why = f"{reply.get('ename', '')}: {reply.get('evalue', '')}"
            return [(False, f"results unreadable: {why}")] * count
        try:
            values = json.loads(ast.literal_eval(text)) if isinstance(text, str) else None
        except (ValueError, SyntaxError, TypeError) as exc:
            return [(False, f"results unreadable: {exc}")] * count
        if not isinstance(values, list) or len(values) != count:
            return [(False, "results unreadable: not one per record")] * count
        return [(bool(ok), value) for ok, value in values]


class JupyterSignal(StageActor):
    """A stage that evaluates ``code`` (one Python expression) on a Jupyter kernel for each
    record, the record bound to ``variable`` (a global of the kernel's namespace: a dict,
    sent as JSON; a stage's ``name`` is its own), and emits the record with
    the value under ``field`` (JSON values come back as they are; others as their repr).

    ``kernel`` is a running KernelClient, or a definition's jupyter server (``server =
    "<name>"`` hands it in). Records waiting together (up to ``max_batch``) go in one
    execute; ``timeout`` bounds each. No record is lost or held back by the kernel:
    - the code raised for a record: ``field`` is None, ``error_field`` (if given) has the
      error text; counted as ``errors`` and each distinct error logged once;
    - the kernel is dead, restarting or failed: ``field`` is None, counted as
      ``unavailable``; the stage's link state follows the kernel's (CONNECTED,
      RECONNECTING, FAILED);
    - no reply within ``timeout``: ``field`` is None, counted as ``timeouts``; the kernel
      is interrupted.
    ``p.stats()`` has ``op_signals``, ``op_errors``, ``op_unavailable``, ``op_timeouts``,
    ``op_executes``.
    """

    def __init__(
        self,
        code: str,
        variable: str = "record",
        field: str = "signal",
        error_field: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_batch: int = 500,
        kernel: Any = None,
    ) -> None:
        super().__init__()
        self.signal = SignalCode(code, variable, field, error_field, timeout, max_batch)
        if kernel is None:
            raise ValueError(
                'jupyter_signal: no kernel: give server = "<name>" naming a [servers.<name>] '
                'kind = "jupyter" in a definition, or kernel=<a KernelClient>'
            )
        if not isinstance(kernel, KernelClient) and not hasattr(kernel, "client"):
            raise TypeError(
                f"jupyter_signal: kernel must be a KernelClient or a jupyter server, got {kernel!r}"
            )
        self._kernel = kernel
        self._client: KernelClient | None = None
        self._counts = dict.fromkeys(
            ("signals", "errors", "unavailable", "timeouts", "executes"), 0
        )
        self._logged: set[str] = set()

    # -- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        kernel = self._kernel
        client = kernel if isinstance(kernel, KernelClient) else kernel.client
        if not isinstance(client, KernelClient):
            raise RuntimeError(
                f"jupyter_signal: the kernel {kernel!r} is not running: start it before the "
                "pipeline (a definition starts its servers before its stages)"
            )
        self._client = client
        if hasattr(kernel, "add_listener"):
            kernel.add_listener(self._on_state)
        self._on_state(client.state, "")

    def on_stop(self) -> None:
        if hasattr(self._kernel, "remove_listener"):
            self._kernel.remove_listener(self._on_state)
        self._rt.state.link_state = "CLOSED"

    def _on_state(self, state: KernelState, _why: str) -> None:
        self._rt.state.link_state = LINK_STATE.get(state, "CONNECTING")

    # -- records ----------------------------------------------------------------------------

    def on_receive(self, message: Any) -> None:
        self._handle([message])

    def on_batch(self, messages: list[Any]) -> None:
        self._handle(messages)

    def _handle(self, records: list[Any]) -> None:
        size = self.signal.max_batch
        for start in range(0, len(records), size):
            self.emit_many(self._signals(records[start : start + size]))
        self._rt.state.component_stats = dict(self._counts)

    def _signals(self, records: list[Any]) -> list[Any]:
        """The records with their values (None where there is none)."""
        signal = self.signal
        results: list[tuple[bool, Any] | None] = [None] * len(records)
        encoded: list[str] = []
        sent: list[int] = []
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                results[i] = (False, f"a record must be a dict, got {type(record).__name__}")
                continue
            try:
                encoded.append(signal.encode(record))
            except (TypeError, ValueError) as exc:
                results[i] = (False, f"record is not JSON: {exc}")
                continue
            sent.append(i)
        if sent:
            for i, outcome in zip(sent, self._execute(encoded), strict=True):
                results[i] = outcome
        return [self._output(r, outcome) for r, outcome in zip(records, results, strict=True)]

    def _execute(self, encoded: list[str]) -> list[tuple[bool, Any] | None]:
        """One execute for the records; None for each when the kernel gave no answer."""
        client, signal, counts = self._client, self.signal, self._counts
        assert client is not None
        self._on_state(client.state, "")
        state = client.state
        if state is not KernelState.ALIVE:
            counts["unavailable"] += len(encoded)
            self._note(f"kernel {state.name}: records pass on without a value")
            return [None] * len(encoded)
        prepare = getattr(self._kernel, "prepare", None)
        if prepare is not None:
            prepare(signal.timeout)
        counts["executes"] += 1
        try:
            result = client.execute(
                signal.cell(encoded),
                silent=True,
                store_history=False,
                user_expressions=signal.expressions,
                allow_stdin=False,
                stop_on_error=False,
                timeout=signal.timeout,
            )
        except KernelDeadError:
            counts["unavailable"] += len(encoded)
            self._on_state(client.state, "")
            self._note("kernel lost during the call: its records pass on without a value")
            return [None] * len(encoded)
        except TimeoutError:
            counts["timeouts"] += len(encoded)
            self._note(f"no reply within {signal.timeout:g}s: records pass on without a value")
            if client.state is KernelState.ALIVE:  # stop the code, or the next waits for it
                try:
                    client.interrupt(timeout=signal.timeout)
                except (TimeoutError, KernelDeadError, RuntimeError) as exc:
                    self.log.warning("kernel interrupt failed", error=str(exc))
            return [None] * len(encoded)
        return list(signal.results(result, len(encoded)))

    def _output(self, record: Any, outcome: tuple[bool, Any] | None) -> Any:
        signal = self.signal
        if outcome is not None and not outcome[0]:
            self._counts["errors"] += 1
            self._note(str(outcome[1]))
        if not isinstance(record, dict):
            return record
        out = dict(record)
        ok = outcome is not None and outcome[0]
        out[signal.field] = outcome[1] if outcome is not None and ok else None
        if ok:
            self._counts["signals"] += 1
        if signal.error_field is not None:
            out[signal.error_field] = None if ok or outcome is None else outcome[1]
        return out

    def _note(self, error: str) -> None:
        """Log each distinct error once (up to MAX_LOGGED_ERRORS of them)."""
        if error in self._logged or len(self._logged) >= MAX_LOGGED_ERRORS:
            return
        self._logged.add(error)
        self.log.warning("jupyter signal failed", error=error, code=self.signal.code)


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point): the
    ``jupyter`` server kind (``[servers.x] kind = "jupyter"``; no ``actorwire serve``)."""

    def check_config(table: Mapping[str, Any], where: str) -> None:
        parse_config(table, where, None)

    return Plugin(
        "jupyter", servers={"jupyter": ServerKind("jupyter", 0, check_config, EmbeddedKernel)}
    )
