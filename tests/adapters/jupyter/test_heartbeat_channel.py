"""The heartbeat channel's deadlines, driven by a ManualClock (real ZMQ sockets)."""

from __future__ import annotations

from typing import Any

import structlog
import zmq.asyncio
from actorwire.actors import Actor, ActorSystem, ManualClock
from actorwire.adapters.jupyter.connection import free_ports
from actorwire.adapters.jupyter.heartbeat import HeartbeatMode
from actorwire.adapters.jupyter.link import (
    ArmHeartbeat,
    HeartbeatChannel,
    HeartbeatLost,
    KernelAnswered,
)
from actorwire.adapters.jupyter.session import Session
from actorwire.adapters.jupyter.wiring import Wiring


class Router(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "got":
            return list(self.got)
        self.got.append(message)
        return None


def _lost(answered_at: float | None, until: float) -> list[tuple[float, HeartbeatLost]]:
    """Arm a startup heartbeat at 0 on a port nobody answers on, report the kernel as
    answering at ``answered_at`` (never if None), advance time to ``until`` in 0.1 s steps;
    each HeartbeatLost the lifecycle actor was told, with the time it came."""
    clock = ManualClock()
    context = zmq.asyncio.Context()
    lost: list[tuple[float, HeartbeatLost]] = []
    try:
        with ActorSystem("hb", clock=clock) as system:
            lifecycle = system.spawn(Router)
            wiring = Wiring(Session(key=b"k"), context, structlog.get_logger(), clock)
            wiring.lifecycle = lifecycle
            hb = system.spawn(HeartbeatChannel, wiring, 0.1, 2.0)
            (port,) = free_ports(1)
            hb.tell(ArmHeartbeat(1, f"tcp://127.0.0.1:{port}", HeartbeatMode.STARTUP))
            for step in range(1, round(until / 0.1) + 1):
                if answered_at is not None and abs(clock() - answered_at) < 1e-6:
                    hb.tell(KernelAnswered(1))
                    hb.ask("sync")  # handled at this very time
                clock.advance(0.1)
                hb.ask("sync")  # the ticks that came due are handled before time moves on
                got: list[Any] = lifecycle.ask("got")
                for message in got[len(lost) :]:
                    if isinstance(message, HeartbeatLost):
                        lost.append((round(step * 0.1, 6), message))
            return lost
    finally:
        context.term()


def test_the_deadline_holds_from_the_kernels_first_answer() -> None:
    # The kernel answered a request at 5.0 s and never a heartbeat: lost 2 s later.
    lost = _lost(answered_at=5.0, until=9.0)
    assert len(lost) == 1
    at, message = lost[0]
    assert 7.0 <= at <= 7.1 + 1e-6  # to the 0.1 s step time moves by
    assert "2s (heartbeat deadline)" in message.reason


def test_a_kernel_that_never_answered_is_left_to_the_startup_timeout() -> None:
    assert _lost(answered_at=None, until=10.0) == []
