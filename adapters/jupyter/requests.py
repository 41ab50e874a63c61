"""The requests a kernel answers: kernel_info, execute, complete, inspect, is_complete and
interrupt, each with its content checked before anything is sent.

Every request blocks for its reply, and has an awaitable twin with the same signature
(``akernel_info``, ``aexecute``, ...) that awaits the same reply's future on the caller's
loop, with no thread. ``KernelRequests`` is the part of KernelClient that makes them; the
client provides how a request goes out (``_ask``, ``_execute``) and how the kernel is
interrupted (``_interrupt``).
"""

from __future__ import annotations

from typing import Any

from .calls import Pending
from .replies import ExecutionResult

__all__ = ["KernelRequests"]


class KernelRequests:
    """``kernel_info``, ``execute``, ``complete``, ``inspect``, ``is_complete`` and
    ``interrupt``, blocking and awaitable (see the module docstring)."""

    name: str

    def _ask(
        self, channel: str, msg_type_: str, content: dict[str, Any], timeout: float | None
    ) -> Pending[dict[str, Any]]:
        """Send a request answered by its reply message (``timeout`` None: the default)."""
        raise NotImplementedError

    def _execute(self, content: dict[str, Any], timeout: float | None) -> Pending[ExecutionResult]:
        """Send an execute_request, answered once its reply and iopub idle are in."""
        raise NotImplementedError

    def _interrupt(self, timeout: float | None) -> Pending[dict[str, Any]] | None:
        """Interrupt the kernel: by a signal (None), or by an interrupt_request."""
        raise NotImplementedError

    def kernel_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The kernel_info_reply message (``["content"]`` has language_info, ...)."""
        return self._ask("shell", "kernel_info_request", {}, timeout).wait()

    async def akernel_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Awaitable ``kernel_info``."""
        return await self._ask("shell", "kernel_info_request", {}, timeout).wait_async()

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult:
        """Run ``code``; return its ExecutionResult once the reply and iopub idle are in.

        ``allow_stdin`` defaults to True: ``input()`` reaches ``on_stdin``. ``timeout``
        (seconds) defaults to none: the call waits while the kernel lives, and fails with
        KernelDeadError if it dies. A TimeoutError leaves the code running (``interrupt``).
        """
        content = _execute_content(
            code, silent, store_history, user_expressions, allow_stdin, stop_on_error
        )
        return self._execute(content, timeout).wait()

    async def aexecute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult:
        """Awaitable ``execute``."""
        content = _execute_content(
            code, silent, store_history, user_expressions, allow_stdin, stop_on_error
        )
        return await self._execute(content, timeout).wait_async()

    def complete(
        self, code: str, cursor_pos: int | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """The complete_reply message (``["content"]["matches"]``); cursor defaults to the end."""
        content = _complete_content(code, cursor_pos)
        return self._ask("shell", "complete_request", content, timeout).wait()

    async def acomplete(
        self, code: str, cursor_pos: int | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Awaitable ``complete``."""
        content = _complete_content(code, cursor_pos)
        return await self._ask("shell", "complete_request", content, timeout).wait_async()

    def inspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The inspect_reply message (``["content"]["data"]`` when ``found``)."""
        content = _inspect_content(code, cursor_pos, detail_level)
        return self._ask("shell", "inspect_request", content, timeout).wait()

    async def ainspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Awaitable ``inspect``."""
        content = _inspect_content(code, cursor_pos, detail_level)
        return await self._ask("shell", "inspect_request", content, timeout).wait_async()

    def is_complete(self, code: str, *, timeout: float | None = None) -> dict[str, Any]:
        """The is_complete_reply message (``["content"]["status"]``: complete, incomplete,
        invalid or unknown)."""
        content = _is_complete_content(code)
        return self._ask("shell", "is_complete_request", content, timeout).wait()

    async def ais_complete(self, code: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Awaitable ``is_complete``."""
        content = _is_complete_content(code)
        return await self._ask("shell", "is_complete_request", content, timeout).wait_async()

    def interrupt(self, *, timeout: float | None = None) -> None:
        """Interrupt running code: SIGINT to an owned kernel whose interrupt_mode is
        ``signal``, else an interrupt_request on the control channel (waits for its reply)."""
        pending = self._interrupt(timeout)
        if pending is not None:
            self._interrupted(pending.wait())

    async def ainterrupt(self, *, timeout: float | None = None) -> None:
        """Awaitable ``interrupt``."""
        pending = self._interrupt(timeout)
        if pending is not None:
            self._interrupted(await pending.wait_async())

    def _interrupted(self, reply: dict[str, Any]) -> None:
        if reply.get("content", {}).get("status") != "ok":
            raise RuntimeError(
                f"kernel {self.name!r} refused the interrupt: {reply.get('content', {})!r}"
            )


def _check_code(code: object) -> str:
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, got {type(code).__name__}")
    return code


def _cursor(code: str, cursor_pos: int | None) -> int:
    """``cursor_pos`` checked against ``code``; None is the end of the code."""
    if cursor_pos is None:
        return len(code)
    if isinstance(cursor_pos, bool) or not isinstance(cursor_pos, int):
        raise TypeError(f"cursor_pos must be an int, got {cursor_pos!r}")
    if not 0 <= cursor_pos <= len(code):
        raise ValueError(f"cursor_pos must be within 0..{len(code)}, got {cursor_pos}")
    return cursor_pos


def _execute_content(
    code: str,
    silent: bool,
    store_history: bool,
    user_expressions: dict[str, str] | None,
    allow_stdin: bool | None,
    stop_on_error: bool,
) -> dict[str, Any]:
    """An execute_request's content; ``allow_stdin=None`` means True."""
    _check_code(code)
    if user_expressions is not None and not isinstance(user_expressions, dict):
        raise TypeError(f"user_expressions must be a dict, got {user_expressions!r}")
    return {
        "code": code,
        "silent": bool(silent),
        "store_history": bool(store_history),
        "user_expressions": user_expressions or {},
        "allow_stdin": True if allow_stdin is None else bool(allow_stdin),
        "stop_on_error": bool(stop_on_error),
    }


def _complete_content(code: str, cursor_pos: int | None) -> dict[str, Any]:
    """A complete_request's content; the cursor defaults to the end of the code."""
    return {"code": code, "cursor_pos": _cursor(_check_code(code), cursor_pos)}


def _inspect_content(code: str, cursor_pos: int | None, detail_level: int) -> dict[str, Any]:
    """An inspect_request's content; the cursor defaults to the end of the code."""
    pos = _cursor(_check_code(code), cursor_pos)
    return {"code": code, "cursor_pos": pos, "detail_level": int(detail_level)}


def _is_complete_content(code: str) -> dict[str, Any]:
    """An is_complete_request's content."""
    return {"code": _check_code(code)}
