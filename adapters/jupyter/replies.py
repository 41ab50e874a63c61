"""Matching replies to requests, and assembling what an execute produced.

Sans-I/O: the matcher takes decoded message dicts and says which request is complete.
Replies on shell or control and iopub messages are matched by ``parent_header.msg_id``.
A request that waits for idle (execute) is complete once both its reply and its iopub
``status: idle`` have arrived, in either order; the others complete on the reply alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...actors.errors import ActorwireError

__all__ = [
    "OUTPUT_TYPES",
    "Completed",
    "ExecutionError",
    "ExecutionResult",
    "ReplyMatcher",
    "msg_type",
    "parent_id",
]

Message = dict[str, Any]

OUTPUT_TYPES = frozenset(
    {"stream", "display_data", "update_display_data", "execute_result", "error", "clear_output"}
)
"""iopub message types that are outputs of a request (status and execute_input are not)."""


def msg_type(msg: Mapping[str, Any]) -> str:
    """``header.msg_type`` of a decoded message ("" when missing)."""
    header = msg.get("header")
    value = header.get("msg_type", "") if isinstance(header, Mapping) else ""
    return value if isinstance(value, str) else ""


def parent_id(msg: Mapping[str, Any]) -> str:
    """``parent_header.msg_id`` of a decoded message ("" when it has no parent)."""
    parent = msg.get("parent_header")
    value = parent.get("msg_id", "") if isinstance(parent, Mapping) else ""
    return value if isinstance(value, str) else ""


@dataclass
class Completed:
    """A request whose answer is complete: its reply and the iopub messages it caused."""

    msg_id: str
    request_type: str
    reply: Message | None = None
    iopub: list[Message] = field(default_factory=list)
    wait_idle: bool = False
    idle: bool = False

    @property
    def done(self) -> bool:
        return self.reply is not None and (self.idle or not self.wait_idle)


class ReplyMatcher:
    """Pending requests by msg_id; feed it replies and iopub messages as they arrive."""

    __slots__ = ("_pending", "unmatched")

    def __init__(self) -> None:
        self._pending: dict[str, Completed] = {}
        self.unmatched = 0
        """Replies whose request is not (or no longer) pending: timed out or not ours."""

    def track(self, msg_id: str, request_type: str, *, wait_idle: bool = False) -> None:
        """Expect a reply to ``msg_id`` (and its iopub idle too when ``wait_idle``)."""
        if msg_id in self._pending:
            raise ValueError(f"request {msg_id!r} is already pending")
        self._pending[msg_id] = Completed(msg_id, request_type, wait_idle=wait_idle)

    def on_reply(self, msg: Message) -> Completed | None:
        """A shell or control reply: the request it completes, if any."""
        entry = self._pending.get(parent_id(msg))
        if entry is None or entry.reply is not None:
            self.unmatched += 1
            return None
        entry.reply = msg
        return self._finish(entry)

    def on_iopub(self, msg: Message) -> Completed | None:
        """An iopub message: recorded for its request; returns the request idle completes."""
        entry = self._pending.get(parent_id(msg))
        if entry is None:
            return None
        entry.iopub.append(msg)
        if msg_type(msg) == "status" and msg.get("content", {}).get("execution_state") == "idle":
            entry.idle = True
            return self._finish(entry)
        return None

    def _finish(self, entry: Completed) -> Completed | None:
        if not entry.done:
            return None
        del self._pending[entry.msg_id]
        return entry

    def forget(self, msg_id: str) -> bool:
        """Stop waiting for ``msg_id`` (its caller gave up); True if it was pending."""
        return self._pending.pop(msg_id, None) is not None

    def drain(self) -> list[Completed]:
        """Every pending request, removed (to fail them all when the kernel dies)."""
        pending = list(self._pending.values())
        self._pending.clear()
        return pending

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._pending

    def __len__(self) -> int:
        return len(self._pending)


class ExecutionError(ActorwireError, RuntimeError):
    """The code raised in the kernel: ``ename``, ``evalue`` and the ``traceback`` lines."""

    def __init__(self, ename: str, evalue: str, traceback: list[str]) -> None:
        super().__init__(f"{ename}: {evalue}")
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback


@dataclass(frozen=True)
class ExecutionResult:
    """Everything one ``execute`` produced, in arrival order.

    ``iopub`` holds every iopub message of the request (status, execute_input, outputs);
    ``outputs`` only the outputs (streams, display data, the result, errors). The
    accessors give the common parts: ``result`` (text/plain), ``stdout``, ``error``.
    """

    msg_id: str
    reply: Message
    iopub: list[Message]

    @classmethod
    def from_completed(cls, completed: Completed) -> ExecutionResult:
        assert completed.reply is not None
        return cls(completed.msg_id, completed.reply, list(completed.iopub))

    @property
    def content(self) -> dict[str, Any]:
        """The ``execute_reply`` content."""
        content = self.reply.get("content", {})
        return content if isinstance(content, dict) else {}

    @property
    def status(self) -> str:
        """``ok``, ``error`` or ``aborted`` (from the execute_reply)."""
        return str(self.content.get("status", ""))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def execution_count(self) -> int | None:
        count = self.content.get("execution_count")
        return count if isinstance(count, int) else None

    @property
    def outputs(self) -> list[Message]:
        return [m for m in self.iopub if msg_type(m) in OUTPUT_TYPES]

    @property
    def msg_types(self) -> list[str]:
        """The iopub message types in order, e.g. status, execute_input, ..., status."""
        return [msg_type(m) for m in self.iopub]

    @property
    def data(self) -> dict[str, Any] | None:
        """The execute_result's MIME bundle, or None when the code returned nothing."""
        for m in self.iopub:
            if msg_type(m) == "execute_result":
                data = m.get("content", {}).get("data")
                return data if isinstance(data, dict) else {}
        return None

    @property
    def result(self) -> str | None:
        """The execute_result's ``text/plain`` (``"2"`` for ``1+1``), or None."""
        data = self.data
        if data is None:
            return None
        text = data.get("text/plain")
        return text if isinstance(text, str) else None

    def _stream(self, name: str) -> str:
        return "".join(
            str(m.get("content", {}).get("text", ""))
            for m in self.iopub
            if msg_type(m) == "stream" and m.get("content", {}).get("name") == name
        )

    @property
    def stdout(self) -> str:
        """Everything printed to stdout, joined."""
        return self._stream("stdout")

    @property
    def stderr(self) -> str:
        """Everything written to stderr, joined."""
        return self._stream("stderr")

    @property
    def displays(self) -> list[dict[str, Any]]:
        """MIME bundles of display_data outputs, in order."""
        return [
            m.get("content", {}).get("data", {})
            for m in self.iopub
            if msg_type(m) == "display_data"
        ]

    @property
    def error(self) -> ExecutionError | None:
        """The error the code raised (from iopub, else the reply), or None."""
        source: Mapping[str, Any] | None = None
        for m in self.iopub:
            if msg_type(m) == "error":
                source = m.get("content", {})
                break
        if source is None and self.status == "error":
            source = self.content
        if source is None:
            return None
        traceback = source.get("traceback", [])
        return ExecutionError(
            str(source.get("ename", "")),
            str(source.get("evalue", "")),
            [str(line) for line in traceback] if isinstance(traceback, list) else [],
        )

    def raise_for_error(self) -> ExecutionResult:
        """Raise the ExecutionError if the code failed; return self otherwise."""
        error = self.error
        if error is not None:
            raise error
        return self

    def __repr__(self) -> str:
        shown = f" result={self.result!r}" if self.result is not None else ""
        err = self.error
        failed = f" error={err.ename}" if err is not None else ""
        return (
            f"<ExecutionResult {self.status} [{self.execution_count}]{shown}{failed} "
            f"outputs={len(self.outputs)}>"
        )
