"""The heartbeat channel's deadlines, driven by a ManualClock (real ZMQ sockets)."""

from __future__ import annotations

from typing import Any

import structlog
import zmq.asyncio
from actorwire.actors import Actor, ActorSystem, ManualClock
from actorwire.adapters.jupyter.connection import free_ports
from actorwire.adapters.jupyter.session import Session
from actorwire.adapters.jupyter.transport import (
    ArmHeartbeat,
    HeartbeatChannel,
    HeartbeatLost,
    KernelAnswered,
    Wiring,
)


class Router(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "got":
            return list(self.got)
        self.got.append(message)
        return None


def _lost_after(seconds: float, *, answered: bool) -> list[Any]:
    """Arm a startup heartbeat at a port nobody answers on, optionally report the kernel as
    answering, advance time by ``seconds`` in steps; what the router was told."""
    clock = ManualClock()
    context = zmq.asyncio.Context()
    try:
        with ActorSystem("hb", clock=clock) as system:
            router = system.spawn(Router)
            wiring = Wiring(Session(key=b"k"), context, structlog.get_logger(), clock)
            wiring.router = router
            hb = system.spawn(HeartbeatChannel, wiring, 0.1, 2.0, 45.0)
            (port,) = free_ports(1)
            hb.tell(ArmHeartbeat(1, f"tcp://127.0.0.1:{port}", "startup"))
            if answered:
                hb.tell(KernelAnswered(1))
            steps = round(seconds / 0.1)
            for _ in range(steps):
                clock.advance(0.1)
                hb.ask("sync")  # the ticks that came due are handled before time moves on
            got: list[Any] = router.ask("got")
            return got
    finally:
        context.term()


def test_the_startup_allowance_ends_once_the_kernel_has_answered() -> None:
    lost = [m for m in _lost_after(3.0, answered=True) if isinstance(m, HeartbeatLost)]
    assert len(lost) == 1 and "2s (heartbeat deadline)" in lost[0].reason


def test_a_kernel_still_starting_gets_the_startup_allowance() -> None:
    assert not [m for m in _lost_after(3.0, answered=False) if isinstance(m, HeartbeatLost)]
