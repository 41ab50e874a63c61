"""Link: a transport kept alive by heartbeat, reconnect and sequence actors.

A Link is a supervisor (rest_for_one) over four actors, started in this order:

- sequence: the subscription registry and per-stream order (SequenceTracker); delivers to
  the consumer in order, once; asks the adapter for a replay on a gap, resubscribes from
  the first missing sequence number when recovery escalates;
- transport: the connection (its I/O on the system's loop);
- heartbeat: pings a quiet peer and declares the connection dead past the deadline;
- reconnect: the link's state machine: dials, authenticates, redials with backoff
  (jitter, cap; an optional attempt limit ends in FAILED), and on every new connection has
  the sequence actor replay every live subscription from where delivery stopped.

The policies are the sans-I/O classes (BackoffPolicy, HeartbeatPolicy, SequenceTracker);
these actors only feed them time and messages.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog

from ..actor import Actor
from ..backoff import Backoff, BackoffPolicy
from ..clock import Clock, monotonic
from ..statecell import StateCell
from ..supervisor import ChildSpec, Strategy, Supervisor
from .adapter import Authenticated, AuthFailed, LinkAdapter, Ordering, PeerError, SessionLost
from .heartbeat import HeartbeatAction, HeartbeatPolicy
from .machine import (
    ArmHeartbeat,
    CloseConnection,
    CloseExpected,
    CloseRequested,
    Dial,
    DisarmHeartbeat,
    LinkMachine,
    LinkState,
    LoginAccepted,
    LoginRefused,
    Lost,
    Opened,
    Phase,
    RecoveryChanged,
    Report,
    Restarted,
    ResumeSubscriptions,
    SendFrames,
    Started,
    Stopped,
    SupervisorGaveUp,
    SuspendSubscriptions,
    Timer,
)
from .sequence import Deliver, Escalate, LatestFilter, RequestRecovery, SequenceTracker
from .transport import (
    Call,
    Close,
    Connect,
    Connected,
    ConnectFailed,
    ControlEvents,
    Disconnected,
    Inbound,
    LinkStats,
    ProtocolFault,
    Send,
    Wiring,
    _Peers,
)

if TYPE_CHECKING:
    from ..address import Address
    from ..system import ActorSystem

__all__ = [
    "HeartbeatActor",
    "Link",
    "LinkState",
    "ReconnectActor",
    "SequenceActor",
    "StateListener",
]


StateListener = Callable[[LinkState, str], None]


# -- messages between the link's actors -----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Subscribe:
    stream: Hashable
    from_seq: int | None


@dataclass(frozen=True, slots=True)
class _Unsubscribe:
    stream: Hashable


@dataclass(frozen=True, slots=True)
class _Resume:
    gen: int


@dataclass(frozen=True, slots=True)
class _Suspend:
    pass


@dataclass(frozen=True, slots=True)
class _PollRecovery:
    pass


@dataclass(frozen=True, slots=True)
class _Recovering:
    active: bool


@dataclass(frozen=True, slots=True)
class _Arm:
    gen: int


@dataclass(frozen=True, slots=True)
class _Disarm:
    pass


@dataclass(frozen=True, slots=True)
class _Tick:
    gen: int


@dataclass(frozen=True, slots=True)
class _Dead:
    gen: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Fire:
    """A machine timer came due: its event goes back to the machine."""

    event: Any


@dataclass(frozen=True, slots=True)
class _CloseLink:
    pass


@dataclass(frozen=True, slots=True)
class _ExpectClose:
    """Tell the reconnect actor the peer will end the connection (see Link.expect_close)."""


@dataclass(frozen=True, slots=True)
class _Status:
    pass


class _LinkActor(Actor):
    """Shared wiring: sibling lookup by name."""

    def __init__(self, peers: dict[str, str]) -> None:
        super().__init__()
        self._peers = _Peers(peers)

    def peer(self, role: str) -> Address:
        return self._peers.get(self, role)


class SequenceActor(_LinkActor):
    """Subscriptions and order: every data frame reaches the consumer once, in order."""

    def __init__(
        self,
        peers: dict[str, str],
        adapter: LinkAdapter,
        consumer: Address,
        max_held: int,
        recovery_timeout: float,
        clock: Clock,
    ) -> None:
        super().__init__(peers)
        self.adapter = adapter
        self.consumer = consumer
        self.clock = clock
        self.tracker = SequenceTracker(max_held=max_held, recovery_timeout=recovery_timeout)
        self.subs: dict[Hashable, int | None] = {}
        self.connected = False
        self.recovering = False
        self.poll_due: float | None = None
        self.escalations: dict[Hashable, int] = {}
        self.consumer_rejected = 0
        self.latest = LatestFilter() if adapter.ordering is Ordering.LATEST else None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Inbound):
            self._inbound(message.data)
        elif isinstance(message, _PollRecovery):
            self.poll_due = None
            self._act(self.tracker.poll(self.clock()))
        elif isinstance(message, _Subscribe):
            self.subs[message.stream] = message.from_seq
            if self.latest is not None:
                self.latest.forget(self.adapter.data_stream(message.stream))
            elif message.from_seq is not None:
                self.tracker.forget(message.stream)
                self.tracker.expect(message.stream, message.from_seq)
            if self.connected:
                self._send(self.adapter.subscribe(message.stream, message.from_seq))
        elif isinstance(message, _Unsubscribe):
            if message.stream in self.subs:
                del self.subs[message.stream]
                self.tracker.forget(message.stream)
                if self.latest is not None:
                    self.latest.forget(self.adapter.data_stream(message.stream))
                if self.connected:
                    self._send(self.adapter.unsubscribe(message.stream))
            else:
                self.log.warning("unsubscribe from a stream not subscribed", stream=message.stream)
        elif isinstance(message, _Resume):
            self.connected = True
            for stream, from_seq in self.subs.items():
                if self.latest is not None:
                    # Ordering.LATEST resumes after the newest position delivered, if any.
                    last = self.latest.last.get(self.adapter.data_stream(stream))
                    self._send(self.adapter.subscribe(stream, from_seq if last is None else last))
                    continue
                expected = self.tracker.expected(stream)
                self._send(self.adapter.subscribe(stream, expected if expected else from_seq))
        elif isinstance(message, _Suspend):
            self.connected = False
        elif isinstance(message, _Status):
            return {
                "consumer_rejected": self.consumer_rejected,
                "stale": self.latest.stale if self.latest is not None else 0,
                "subscriptions": dict(self.subs),
                "expected": {s: self.tracker.expected(s) for s in self.subs},
                **self.tracker.stats(),
            }
        else:
            super().on_receive(message)
        return None

    def _deliver(self, items: list[Any]) -> None:
        if not items:
            return
        rejected = self.consumer.tell_many(items)
        if rejected:
            # A consumer whose bounded mailbox refuses (FAIL, or BACKPRESSURE timed out):
            # counted and logged; it never crashes the sequence actor.
            self.consumer_rejected += rejected
            self.log.error(
                "consumer mailbox refused data",
                consumer=self.consumer.name,
                rejected=rejected,
                rejected_total=self.consumer_rejected,
            )

    def _inbound_latest(self, latest: LatestFilter, data: list[Any]) -> None:
        accept = latest.accept
        self._deliver([item for stream, seq, item in data if seq is None or accept(stream, seq)])

    def _inbound(self, data: list[Any]) -> None:
        if self.latest is not None:
            self._inbound_latest(self.latest, data)
            return
        now = self.clock()
        tracker = self.tracker
        deliver = self._deliver
        # Fast path: runs of in-order frames go to the tracker together; runs of unsequenced
        # items pass straight through, one delivery a run. Arrival order is kept: a run is
        # handed over before the next one starts.
        run_stream: Hashable = None
        run: list[tuple[int, Any]] = []
        loose: list[Any] = []
        actions: list[Any] = []
        for stream, seq, item in data:
            if seq is None:
                if run:
                    actions.extend(tracker.receive_many(run_stream, run, now))
                    run = []
                if actions:
                    self._act(actions)
                    actions = []
                loose.append(item)
                continue
            if loose:
                deliver(loose)
                loose = []
            if stream != run_stream and run:
                actions.extend(tracker.receive_many(run_stream, run, now))
                run = []
            run_stream = stream
            run.append((seq, item))
        if run:
            actions.extend(tracker.receive_many(run_stream, run, now))
        if loose:
            deliver(loose)
        self._act(actions)

    def _act(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Deliver):
                self._deliver(action.items)
            elif isinstance(action, RequestRecovery):
                frames = self.adapter.recover(action.stream, action.first, action.last)
                if frames is None:
                    self._resubscribe(action.stream, "the protocol cannot replay")
                else:
                    self.log.info(
                        "gap: asking for a replay",
                        stream=action.stream,
                        first=action.first,
                        last=action.last,
                    )
                    self._send(frames)
            elif isinstance(action, Escalate):
                self._resubscribe(action.stream, action.reason)
        recovering = any(self.tracker.recovering(s) for s in self.tracker.streams())
        if recovering != self.recovering:
            self.recovering = recovering
            self.peer("reconnect").tell(_Recovering(recovering))
        deadline = self.tracker.next_deadline()
        if deadline is not None and (self.poll_due is None or deadline < self.poll_due):
            self.poll_due = deadline
            self.system.send_after(max(deadline - self.clock(), 0.0), self.address, _PollRecovery())

    def _resubscribe(self, stream: Hashable, reason: str) -> None:
        expected = self.tracker.expected(stream)
        self.escalations[stream] = self.escalations.get(stream, 0) + 1
        self.log.warning(
            "recovery escalated: resubscribing", stream=stream, from_seq=expected, reason=reason
        )
        if self.connected and stream in self.subs:
            self._send(self.adapter.subscribe(stream, expected))

    def _send(self, frames: list[Any]) -> None:
        if frames:
            self.peer("transport").tell(Send(list(frames)))


class HeartbeatActor(_LinkActor):
    """Pings a quiet connection and reports it dead when nothing arrives by the deadline."""

    def __init__(
        self,
        peers: dict[str, str],
        adapter: LinkAdapter,
        stats: LinkStats,
        interval: float,
        deadline: float,
        clock: Clock,
    ) -> None:
        super().__init__(peers)
        self.adapter = adapter
        self.stats = stats
        self.interval = interval
        self.deadline = deadline
        self.clock = clock
        self.policy: HeartbeatPolicy | None = None
        self.gen = 0
        self.pings = 0

    def on_receive(self, message: Any) -> None:
        if isinstance(message, _Tick):
            if message.gen == self.gen and self.policy is not None:
                self._tick()
        elif isinstance(message, _Arm):
            self.gen = message.gen
            self.policy = HeartbeatPolicy(
                self.interval, self.deadline, self.clock(), always_ping=self.adapter.always_ping
            )
            self._schedule(self.policy.next_check(self.clock()))
        elif isinstance(message, _Disarm):
            self.policy = None
            self.gen = -1
        else:
            super().on_receive(message)

    def _tick(self) -> None:
        policy = self.policy
        assert policy is not None
        now = self.clock()
        last = self.stats.last_inbound
        if last > policy.last_inbound:
            policy.on_traffic(min(last, now))
        action = policy.poll(now)
        if action is HeartbeatAction.DEAD:
            self.policy = None
            self.peer("reconnect").tell(
                _Dead(self.gen, f"no inbound traffic for {self.deadline}s (heartbeat deadline)")
            )
            return
        if action is HeartbeatAction.SEND_PING:
            self.pings += 1
            frame = self.adapter.ping(self.pings)
            if frame is not None:
                self.peer("transport").tell(Send([frame]))
            policy.on_ping_sent(now)
        self._schedule(policy.next_check(now))

    def _schedule(self, delay: float) -> None:
        self.system.send_after(max(delay, 0.005), self.address, _Tick(self.gen))


class _MachineCell:
    """The link's state machine and what its shells share: it outlives the reconnect
    actor's incarnations (the generation with it), and the link's supervisor marks it
    ``closing`` before it stops the link's actors for good."""

    def __init__(self, machine: LinkMachine) -> None:
        self.machine = machine
        self.lock = threading.Lock()
        self.closing = False


class ReconnectActor(_LinkActor):
    """The thin shell around the link's LinkMachine: turns messages into machine events
    and the machine's actions into messages to the transport, heartbeat and sequence
    actors, timers and state reports."""

    def __init__(
        self,
        peers: dict[str, str],
        adapter: LinkAdapter,
        cell: _MachineCell,
        on_state: StateListener,
        clock: Clock,
    ) -> None:
        super().__init__(peers)
        self.adapter = adapter
        self.cell = cell
        self.on_state = on_state
        self.clock = clock
        self.protocol_errors = 0
        self.last_protocol_error: str | None = None

    @property
    def machine(self) -> LinkMachine:
        return self.cell.machine

    def on_start(self) -> None:
        if self.machine.phase is Phase.IDLE:
            self._feed(Started())
        else:
            self._feed(Restarted("the link's supervisor restarted its actors"))

    def on_stop(self) -> None:
        if self.cell.closing:
            self._feed(Stopped())
        # Otherwise the supervisor restarts the link's actors: the next incarnation redials.

    def on_receive(self, message: Any) -> Any:
        gen = self.machine.gen
        if isinstance(message, Connected):
            if message.gen == gen:  # the login frames are made for the current one only
                self._feed(Opened(gen, message.peer, tuple(self.adapter.on_connected())))
        elif isinstance(message, ControlEvents):
            if message.gen == gen:
                for event in message.events:
                    self._control(gen, event)
        elif isinstance(message, ProtocolFault):
            if message.gen == gen:
                self.protocol_errors += 1
                self.last_protocol_error = message.reason
        elif isinstance(message, ConnectFailed | Disconnected | _Dead):
            self._feed(Lost(message.gen, message.reason))
        elif isinstance(message, _Fire):
            self._feed(message.event)
        elif isinstance(message, _Recovering):
            self._feed(RecoveryChanged(message.active))
        elif isinstance(message, _CloseLink):
            self._feed(CloseRequested())
        elif isinstance(message, _ExpectClose):
            self._feed(CloseExpected())
        elif isinstance(message, _Status):
            machine = self.machine
            return {
                "state": machine.state.name if machine.state else None,
                "phase": machine.phase.name,
                "peer": machine.peer,
                "reconnects": machine.reconnects,
                "attempts": machine.attempts,
                "last_protocol_error": self.last_protocol_error,
            }
        else:
            super().on_receive(message)
        return None

    def _control(self, gen: int, event: Any) -> None:
        if isinstance(event, Authenticated):
            self._feed(LoginAccepted(gen))
        elif isinstance(event, AuthFailed):
            self._feed(LoginRefused(gen, event.reason))
        elif isinstance(event, SessionLost):
            self._feed(Lost(gen, f"the peer lost our session: {event.reason}"))
        elif isinstance(event, PeerError):
            self.log.warning("peer reported an error", peer=self.machine.peer, reason=event.reason)
        else:
            frames = self.adapter.on_control(event)
            if frames:
                self.peer("transport").tell(Send(list(frames)))

    def _feed(self, event: Any) -> None:
        with self.cell.lock:
            actions = self.machine.handle(event, self.clock())
        for action in actions:
            self._do(action)

    def _do(self, action: Any) -> None:
        cls = action.__class__
        if cls is Dial:
            if action.gen > 1:
                self.log.info("redialling", attempt=self.machine.attempts)
            self.peer("transport").tell(Connect(action.gen))
        elif cls is SendFrames:
            self.peer("transport").tell(Send(list(action.frames)))
        elif cls is ArmHeartbeat:
            self.peer("heartbeat").tell(_Arm(action.gen))
        elif cls is DisarmHeartbeat:
            self.peer("heartbeat").tell(_Disarm())
        elif cls is ResumeSubscriptions:
            self.peer("sequence").tell(_Resume(action.gen))
        elif cls is SuspendSubscriptions:
            self.peer("sequence").tell(_Suspend())
        elif cls is CloseConnection:
            self.peer("transport").tell(Close(action.gen))
        elif cls is Timer:
            self.system.send_after(action.delay, self.address, _Fire(action.event))
        elif cls is Report:
            _report(self.log, self.on_state, action)


def _report(log: Any, on_state: StateListener, action: Report) -> None:
    level = log.warning if action.state in (LinkState.FAILED, LinkState.RECONNECTING) else log.info
    level("link state", state=action.state.name, reason=action.reason)
    on_state(action.state, action.reason)


def _expire(future: concurrent.futures.Future[Any], link: str, what: str, timeout: float) -> None:
    if not future.done():
        reason = f"link {link!r}: no answer to {what} within {timeout}s"
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            future.set_exception(TimeoutError(reason))


class _LinkSupervisor(Supervisor):
    """The link's supervisor: marks the machine closing before it stops the link's actors
    for good, so that the reconnect actor tells a final stop from a restart."""

    def __init__(self, cell: _MachineCell, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._machine_cell = cell

    def on_stop(self) -> None:
        self._machine_cell.closing = True
        super().on_stop()


class Link:
    """A supervised connection: start it, subscribe, and read frames from the consumer.

    ``consumer`` receives every data item exactly once and in order per stream, across
    reconnects, gaps, duplicates and reordering. ``state`` and ``state_listener(state,
    reason)`` report CONNECTING, CONNECTED, RECOVERING, RECONNECTING, FAILED and CLOSED.
    The link's actors fail and restart under a rest-for-one supervisor; more than
    ``max_restarts`` within ``restart_window`` seconds and it gives up: FAILED. A consumer
    that falls behind (a full BACKPRESSURE mailbox) pauses reading once ``max_backlog``
    reads wait at the sequence actor, so memory stays bounded and the peer feels the
    backpressure; nothing is dropped.
    """

    def __init__(
        self,
        system: ActorSystem,
        adapter: LinkAdapter,
        consumer: Address,
        *,
        name: str = "link",
        heartbeat_interval: float = 1.0,
        heartbeat_deadline: float = 3.0,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        max_held: int = 10_000,
        recovery_timeout: float = 5.0,
        state_listener: StateListener | None = None,
        clock: Clock = monotonic,
        max_restarts: int = 10,
        restart_window: float = 10.0,
        max_backlog: int = 1000,
        login_timeout: float | None = None,
    ) -> None:
        if not isinstance(adapter, LinkAdapter):
            raise TypeError(f"Link adapter must be a LinkAdapter, got {adapter!r}")
        if heartbeat_deadline <= heartbeat_interval:
            raise ValueError(
                f"heartbeat_deadline ({heartbeat_deadline}) must exceed heartbeat_interval "
                f"({heartbeat_interval})"
            )
        self.system = system
        self.adapter = adapter
        self.consumer = consumer
        self.name = name
        self._max_restarts = max_restarts
        self._restart_window = restart_window
        self._cell: StateCell[LinkState | None] = StateCell(None, name=name)
        if state_listener is not None:
            # The cell starts at None; every state it is told of is a LinkState.
            self._cell.add_listener(state_listener)  # type: ignore[arg-type]
        self._log = structlog.get_logger("actorwire.link").bind(link=name)
        self.stats = LinkStats()
        peers = {
            "sequence": f"{name}.sequence",
            "transport": f"{name}.transport",
            "heartbeat": f"{name}.heartbeat",
            "reconnect": f"{name}.reconnect",
        }
        self._peers = peers
        stats = self.stats

        if isinstance(max_backlog, bool) or not isinstance(max_backlog, int) or max_backlog < 2:
            raise ValueError(f"max_backlog must be an integer >= 2, got {max_backlog!r}")

        wiring = Wiring(peers, stats, clock, max_backlog)

        def transport() -> Actor:
            return adapter.make_transport(wiring)

        backoff = backoff or Backoff(min=0.05, max=5.0, factor=2.0, jitter=0.2)
        self._clock = clock
        self._machine = _MachineCell(
            LinkMachine(
                BackoffPolicy(backoff, max_attempts=max_attempts),
                login_timeout=heartbeat_deadline if login_timeout is None else login_timeout,
            )
        )
        machine = self._machine
        self._children = [
            ChildSpec(
                peers["sequence"],
                lambda: SequenceActor(peers, adapter, consumer, max_held, recovery_timeout, clock),
            ),
            ChildSpec(peers["transport"], transport),
            ChildSpec(
                peers["heartbeat"],
                lambda: HeartbeatActor(
                    peers, adapter, stats, heartbeat_interval, heartbeat_deadline, clock
                ),
            ),
            ChildSpec(
                peers["reconnect"],
                lambda: ReconnectActor(peers, adapter, machine, self._on_state, clock),
            ),
        ]
        self.address: Address | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Link:
        """Spawn the link's supervisor; it starts connecting at once."""
        if self.address is not None:
            raise RuntimeError(f"link {self.name!r} is already started")
        # The link's own supervisor giving up (restart intensity exceeded) ends in FAILED.
        self.system.add_failure_listener(self._on_supervisor_failure)
        self.address = self.system.spawn(
            _LinkSupervisor,
            self._machine,
            children=self._children,
            strategy=Strategy.REST_FOR_ONE,
            max_restarts=self._max_restarts,
            within=self._restart_window,
            name=self.name,
        )
        return self

    def _on_supervisor_failure(self, address: Address, error: BaseException) -> None:
        if address == self.address:
            self.system.remove_failure_listener(self._on_supervisor_failure)
            cell = self._machine
            with cell.lock:
                actions = cell.machine.handle(SupervisorGaveUp(repr(error)), self._clock())
            for action in actions:  # the link's actors are gone: only the report is left
                if isinstance(action, Report):
                    _report(self._log, self._on_state, action)

    def expect_close(self) -> None:
        """The peer is about to end the connection on purpose (call before sending a
        logout): when it does, the link is CLOSED rather than redialled, and no warning of
        a lost connection is logged. ``close()`` still follows."""
        with contextlib.suppress(LookupError):  # closed already
            self.system.lookup(self._peers["reconnect"]).tell(_ExpectClose())

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection for good and stop the link's actors."""
        if self.address is None:
            return
        self.system.remove_failure_listener(self._on_supervisor_failure)
        try:
            self.system.lookup(self._peers["reconnect"]).tell(_CloseLink())
            self.wait_for(LinkState.CLOSED, timeout)
        except LookupError:
            pass
        self.address.stop(timeout)

    def __enter__(self) -> Link:
        return self.start() if self.address is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- use ---------------------------------------------------------------------------

    def subscribe(self, stream: Hashable, from_seq: int | None = None) -> None:
        """Subscribe to ``stream`` (from ``from_seq`` if given); replayed on every reconnect."""
        self._actor("sequence").tell(_Subscribe(stream, from_seq))

    def unsubscribe(self, stream: Hashable) -> None:
        self._actor("sequence").tell(_Unsubscribe(stream))

    def send(self, *frames: Any) -> None:
        """Send frames on the current connection (dropped, and logged, while it is down)."""
        self._actor("transport").tell(Send(list(frames)))

    def submit(self, request: Any, timeout: float = 10.0) -> concurrent.futures.Future[Any]:
        """Start ``call(request, timeout)``; the future gets its answer or its error."""
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            transport = self._actor("transport")
        except LookupError:
            future.set_exception(ConnectionError(f"link {self.name!r} is closed"))
            return future
        transport.tell(Call(request, future, float(timeout)))
        # Backstop: a call held for a transport that never comes back (it was restarting
        # and its supervisor gave up) still ends, with TimeoutError.
        # Its message is built only if it fires.
        loop = self.system.io.loop
        loop.call_soon_threadsafe(
            loop.call_later,
            timeout + 1.0,
            _expire,
            future,
            self.name,
            type(request).__name__,
            timeout,
        )
        return future

    def call(self, request: Any, timeout: float = 10.0) -> Any:
        """A request/response on the current connection; blocks for the answer.

        Raises ConnectionError when no connection is up or it ends before the answer,
        TimeoutError after ``timeout`` seconds, or the error the peer answered with.
        What a request is, and how its answer is found, is the adapter's
        (``LinkAdapter.request`` and ``route``'s replies, or ``Transport.request``).
        """
        if self.system.io.in_loop_thread():
            raise RuntimeError(
                f"link {self.name!r}: call() would block the I/O loop that answers it; "
                "use submit() and await the future (asyncio.wrap_future) instead"
            )
        future = self.submit(request, timeout)
        try:
            # The loop ends the call at ``timeout``; the margin covers a transport that
            # is restarting (its mailbox holds the call) and never gets to it.
            return future.result(timeout + 1.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"link {self.name!r}: no answer to {type(request).__name__} within {timeout}s"
            ) from None

    def _actor(self, role: str) -> Address:
        if self.address is None:
            raise RuntimeError(f"link {self.name!r} is not started: call start() first")
        return self.system.lookup(self._peers[role])

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> LinkState | None:
        return self._cell.state

    def history(self) -> list[tuple[LinkState, str]]:
        """The latest state changes (up to 1,000), with their reasons."""
        return [(s, r) for s, r in self._cell.history() if s is not None]

    def _on_state(self, state: LinkState, reason: str) -> None:
        # Every change the machine reports is recorded, a repeated state included (its
        # reason is news: the link's supervisor gave up after a redial, say).
        self._cell.set(state, reason, force=True)

    def wait_for(self, state: LinkState, timeout: float = 10.0) -> bool:
        """Block until the link is in ``state``; False on timeout."""
        return self._cell.wait_for(state, timeout)

    def wait_connected(
        self,
        timeout: float,
        *,
        peer: str,
        failed: Callable[[str], BaseException] | None = None,
    ) -> None:
        """Block until the link is CONNECTED (a facade's ``open()``). When it ends FAILED,
        raise ``failed(reason)`` (ConnectionError by default); after ``timeout`` seconds,
        ConnectionError naming ``peer`` and the last reason heard."""
        deadline = monotonic() + timeout
        while True:
            state = self.state
            if state is LinkState.CONNECTED:
                return
            if state is LinkState.FAILED:
                why = self._last_reason("the link failed")
                if failed is not None:
                    raise failed(why)
                raise ConnectionError(f"link {self.name!r} to {peer} failed: {why}")
            left = deadline - monotonic()
            if left <= 0:
                raise ConnectionError(
                    f"could not connect to {peer} within {timeout:g} s: "
                    f"{self._last_reason('no answer')}"
                )
            # FAILED ends the wait too: look again at least every 50 ms.
            self.wait_for(LinkState.CONNECTED, timeout=min(left, 0.05))

    def _last_reason(self, default: str) -> str:
        history = self.history()
        return history[-1][1] if history else default

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """State, counters and per-stream positions, for metrics and debugging."""
        out: dict[str, Any] = {"name": self.name, **self.stats.as_dict()}
        out.update(self._actor("reconnect").ask(_Status(), timeout=timeout))
        out.update(self._actor("sequence").ask(_Status(), timeout=timeout))
        return out
