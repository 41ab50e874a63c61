"""Supervision in two acts, all on 127.0.0.1.

1. A supervised worker crashes on a poison message; its supervisor restarts it, and the
   messages told while it restarted are still handled, in order.
2. A Link to an embedded feed server survives the server being killed and restarted: the
   consumer sees every frame once, in order, including those published while it was down.

Run: python examples/supervision.py
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from actorwire.actors import (
    Actor,
    ActorSystem,
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    configure_logging,
)
from actorwire.actors.link import Link, LinkState
from actorwire.adapters.feed import Data, FeedAdapter, FeedServer


class Worker(Actor):
    """Adds up numbers; the string "poison" makes it crash."""

    def __init__(self, results: list[int]) -> None:
        super().__init__()
        self.results = results

    def on_receive(self, message: Any) -> Any:
        if message == "poison":
            raise ValueError("poisoned message")
        if message == "total":
            return sum(self.results)
        self.results.append(message)
        return None


class Printer(Actor):
    """Collects feed frames and wakes the main thread when it has enough."""

    def __init__(self, seen: list[int], done: threading.Event, want: int) -> None:
        super().__init__()
        self.seen, self.done, self.want = seen, done, want

    def on_batch(self, messages: list[Any]) -> None:
        for frame in messages:
            assert isinstance(frame, Data)
            self.seen.append(frame.seq)
        if len(self.seen) >= self.want:
            self.done.set()


def act_one(system: ActorSystem) -> bool:
    print("== act 1: a crashing worker under a supervisor")
    results: list[int] = []
    system.spawn(
        Supervisor,
        children=[ChildSpec("worker", lambda: Worker(results), restart=Restart.PERMANENT)],
        strategy=Strategy.ONE_FOR_ONE,
        max_restarts=3,
        within=5.0,
        backoff=Backoff(min=0.05, max=1.0, factor=2.0, jitter=0.1),
        name="workers",
    )
    worker = system.lookup("worker")
    for message in [1, 2, "poison", 3, 4]:
        worker.tell(message)
    total = worker.ask("total", timeout=5)
    row = system.metrics()["actors"]["worker"]
    print(
        f"   worker handled {results} (total {total}); restarts={row['restarts']} "
        f"failed={row['failed']}"
    )
    return results == [1, 2, 3, 4] and row["restarts"] == 1


def act_two(system: ActorSystem) -> bool:
    print("== act 2: a link that survives a server restart")
    seen: list[int] = []
    done = threading.Event()
    with FeedServer(streams=("prices",), token="demo-token") as server:
        consumer = system.spawn(Printer, seen, done, 30, name="printer")
        link = Link(
            system,
            FeedAdapter(server.port, token="demo-token"),
            consumer,
            name="feed",
            heartbeat_interval=0.2,
            heartbeat_deadline=1.0,
            backoff=Backoff(min=0.05, max=0.5),
            state_listener=lambda state, why: print(f"   link {state.name}: {why}"),
        ).start()
        if not link.wait_for(LinkState.CONNECTED, 5):
            return False
        link.subscribe("prices", from_seq=1)
        server.publish("prices", 10)
        server.kill()
        server.publish("prices", 10)  # published while the link is down
        server.restart()
        link.wait_for(LinkState.CONNECTED, 5)
        server.publish("prices", 10)
        ok = done.wait(10)
        link.close()
    print(f"   consumer saw {len(seen)} frames, in order: {seen == list(range(1, 31))}")
    return ok and seen == list(range(1, 31))


def main() -> int:
    configure_logging(format="console", level="warning")
    with ActorSystem("demo") as system:
        ok = act_one(system) and act_two(system)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
