"""The keysquare source and sink take the link's heartbeat and backoff parameters, in Python
and in definitions (a bad value is refused naming its key path, the value and what was
expected), and a pipeline is delivering again within 1 s of the platform being back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import actorwire.adapters.keysquare.pipeline as ks_pipeline
import pytest
from actorwire.actors import Backoff
from actorwire.adapters.keysquare import KeySession, PlatformServer, serve
from actorwire.adapters.keysquare.pipeline import LinkOptions
from actorwire.pipelines import Pipeline, load_definition, make_sink, make_source
from actorwire.pipelines.cli import main

from tests.support.waiting import wait_until

MakePipeline = Callable[..., Pipeline]

BACK_WITHIN = 1.0
"""Seconds from the platform's restart returning to the first new record delivered."""

OUTAGES = {"4s": 4.0, "6s": 6.0}
"""How long the platform stays down. Each length catches one way of coming back late: after
4 s a backoff capped at KeySession's 5 s waits until about 6.3 s for its next redial; after
6 s gRPC's own reconnect backoff (1 s growing 1.6x, kept per address in gRPC's global
subchannel pool, so shared by every channel a transport opens) holds dials back 2-3 s."""

WAIT = 10.0
LOGIN = {"application_name": "demo", "api_key": "demo-key"}


class Arrivals:
    """Records by id, with a wait for one id (a callback sink's ``fn`` or a subscription's
    callback)."""

    def __init__(self, id_of: Callable[[Any], str]) -> None:
        self._id_of = id_of
        self._cond = threading.Condition()
        self.ids: list[str] = []

    def __call__(self, record: Any) -> None:
        with self._cond:
            self.ids.append(self._id_of(record))
            self._cond.notify_all()

    def wait_for(self, record_id: str, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: record_id in self.ids, max(timeout, 0.0))


class Platform:
    """The embedded platform on 127.0.0.1, restartable on the same port."""

    def __init__(self) -> None:
        self.server: PlatformServer | None = serve(host="127.0.0.1", port=0)
        self.port = self.server.port
        self.url = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.stop()

    def start(self) -> None:
        self.server = serve(host="127.0.0.1", port=self.port)


@pytest.fixture
def platform() -> Iterator[Platform]:
    platform = Platform()
    try:
        yield platform
    finally:
        platform.stop()


def outage(platform: Platform, p: Pipeline, stage: str, seconds: float) -> float:
    """Stop the platform, see ``stage`` notice, keep the platform down ``seconds`` and start
    it again on the same port; the time the restart returned."""
    stopped = time.monotonic()
    platform.stop()
    wait_until(lambda: p.links()[stage] == "RECONNECTING", WAIT, what=f"{stage} reconnecting")
    # The outage itself: the platform stays down this long (no condition is awaited).
    time.sleep(max(stopped + seconds - time.monotonic(), 0.0))
    platform.start()
    return time.monotonic()


def publish(url: str, record_id: str) -> None:
    with KeySession(LOGIN["application_name"], LOGIN["api_key"], url) as session:
        session.publish("Price", record_id, {"symbol": record_id, "bid": 1.0})


# -- back within 1 s ----------------------------------------------------------------------


@pytest.mark.parametrize("down", OUTAGES.values(), ids=OUTAGES.keys())
def test_a_keysquare_source_delivers_again_within_1s_of_the_platform_being_back(
    make_pipeline: MakePipeline, platform: Platform, down: float
) -> None:
    out = Arrivals(lambda record: record["id"])
    p = make_pipeline()
    p.source("keysquare", name="prices", url=platform.url, data_type="Price", **LOGIN).to(out)
    p.start()
    publish(platform.url, "before")
    assert out.wait_for("before", WAIT), "the source delivered nothing before the outage"

    back = outage(platform, p, "prices", down)
    publish(platform.url, "after")
    assert out.wait_for("after", back + BACK_WITHIN - time.monotonic()), (
        f"no record published after the restart reached the sink within {BACK_WITHIN}s of "
        "the platform being back"
    )
    # The link came back by itself: the stage was never restarted.
    wait_until(lambda: p.stats()["prices"]["source_reconnects"] == 1, what="one reconnect")
    assert p.stats()["prices"]["restarts"] == 0
    assert p.links() == {"prices": "CONNECTED"}
    # A platform restarted without a store: what its stopped run had not yet delivered
    # cannot be known, and the source counts that gap.
    assert p.stats()["prices"]["source_gaps"] == 1
    assert p.stats()["prices"]["source_missed"] == 0  # unknown: not counted as a number


def test_a_keysquare_publish_sink_delivers_again_within_1s_of_the_platform_being_back(
    make_pipeline: MakePipeline, platform: Platform
) -> None:
    p = make_pipeline()
    p.source("inlet", name="in").to(
        "keysquare_publish",
        name="publish",
        url=platform.url,
        data_type="Price",
        id_field="symbol",
        **LOGIN,
    )
    p.start()
    p.address("in").tell({"symbol": "before", "bid": 1.0})
    with KeySession(LOGIN["application_name"], LOGIN["api_key"], platform.url) as reader:
        wait_until(
            lambda: reader.snapshot("Price", return_type="list"), WAIT, 0.05, "the first record"
        )

    back = outage(platform, p, "publish", OUTAGES["4s"])
    p.address("in").tell({"symbol": "after", "bid": 2.0})
    seen = Arrivals(lambda message: message["header"]["id"])
    with KeySession(LOGIN["application_name"], LOGIN["api_key"], platform.url) as reader:
        reader.subscribe("Price", seen)
        assert seen.wait_for("after", back + BACK_WITHIN - time.monotonic()), (
            f"the record written after the restart did not reach the platform within "
            f"{BACK_WITHIN}s of the platform being back"
        )
    wait_until(lambda: p.stats()["publish"]["sink_reconnects"] == 1, what="one reconnect")
    assert p.stats()["publish"]["restarts"] == 0


# -- the parameters -----------------------------------------------------------------------


SOURCE = {"url": "127.0.0.1:1", **LOGIN, "data_type": "Price"}
SINK = {**SOURCE, "id_field": "symbol"}

BAD_VALUES = [
    (
        "heartbeat_interval",
        0,
        ValueError,
        "heartbeat_interval must be a finite number of seconds > 0, got 0",
    ),
    (
        "heartbeat_interval",
        "fast",
        TypeError,
        "heartbeat_interval must be a number of seconds > 0, got 'fast'",
    ),
    (
        "heartbeat_deadline",
        0.25,
        ValueError,
        "heartbeat_deadline must be longer than the heartbeat interval (0.5 s), got 0.25",
    ),
    (
        "heartbeat_deadline",
        float("inf"),
        ValueError,
        "heartbeat_deadline must be a finite number of seconds > 0, got inf",
    ),
    ("backoff_min", -1, ValueError, "backoff_min must be a finite number of seconds > 0, got -1"),
    (
        "backoff_max",
        0.05,
        ValueError,
        "backoff_max must be at least the backoff minimum (0.1 s), got 0.05",
    ),
    ("backoff_max", True, TypeError, "backoff_max must be a number of seconds > 0, got True"),
    ("backoff_factor", 0.5, ValueError, "backoff_factor must be a number >= 1, got 0.5"),
    ("backoff_jitter", 1.5, ValueError, "backoff_jitter must be a number from 0 to 1, got 1.5"),
    (
        "backoff_jitter",
        "lots",
        TypeError,
        "backoff_jitter must be a number from 0 to 1, got 'lots'",
    ),
]


@pytest.mark.parametrize(("key", "value", "error", "message"), BAD_VALUES)
@pytest.mark.parametrize(
    ("build", "params", "owner"),
    [
        (make_source, SOURCE, "keysquare"),
        (make_sink, SINK, "keysquare_publish sink"),
    ],
    ids=["source", "sink"],
)
def test_a_bad_link_parameter_is_refused_naming_it_and_what_was_expected(
    build: Callable[..., Any],
    params: dict[str, Any],
    owner: str,
    key: str,
    value: Any,
    error: type[Exception],
    message: str,
) -> None:
    kind = "keysquare" if build is make_source else "keysquare_publish"
    with pytest.raises(error) as info:
        build(kind, **params, **{key: value})
    assert str(info.value) == f"{owner}: {message}"


DEFINITION = """\
[pipeline]
name = "links"

[[sources]]
name = "prices"
kind = "keysquare"
url = "127.0.0.1:1"
application_name = "demo"
api_key = "demo-key"
data_type = "Price"
source = "demo"
{source_extra}

[[sinks]]
name = "publish"
kind = "keysquare_publish"
from = "prices"
url = "127.0.0.1:1"
application_name = "demo"
api_key = "demo-key"
data_type = "Trade"
id_field = "id"
source = "demo"
{sink_extra}
"""


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        (
            "sources",
            "backoff_max = 0.05",
            "keysquare: backoff_max must be at least the backoff minimum (0.1 s), got 0.05",
        ),
        (
            "sources",
            'heartbeat_interval = "1s"',
            "keysquare: heartbeat_interval must be a number of seconds > 0, got '1s'",
        ),
        (
            "sinks",
            "heartbeat_deadline = 0.5",
            "keysquare_publish sink: heartbeat_deadline must be longer than the heartbeat "
            "interval (0.5 s), got 0.5",
        ),
        (
            "sinks",
            "backoff_factor = 0",
            "keysquare_publish sink: backoff_factor must be a number >= 1, got 0",
        ),
    ],
)
def test_actorwire_check_refuses_a_bad_link_parameter_with_its_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, line: str, message: str
) -> None:
    text = DEFINITION.format(
        source_extra=line if section == "sources" else "",
        sink_extra=line if section == "sinks" else "",
    )
    path = tmp_path / "links.toml"
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    key = line.split(" =", maxsplit=1)[0]
    number = text.splitlines().index(line) + 1
    err = capsys.readouterr().err
    assert f"{path}:{number}: {section}[0].{key}: {message}" in err, err


def test_actorwire_check_accepts_good_link_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "heartbeat_interval = 1\nheartbeat_deadline = 3.5\nbackoff_max = 2"
    path = tmp_path / "links.toml"
    path.write_text(DEFINITION.format(source_extra=extra, sink_extra="backoff_jitter = 0"))
    assert main(["check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


@pytest.fixture
def sessions_made(monkeypatch: pytest.MonkeyPatch) -> list[LinkOptions]:
    """The link options of every KeySession the keysquare stages open (real sessions)."""
    made: list[LinkOptions] = []

    class Recorded(KeySession):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(
                LinkOptions(
                    kwargs["heartbeat_interval"], kwargs["heartbeat_deadline"], kwargs["backoff"]
                )
            )
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(ks_pipeline, "KeySession", Recorded)
    return made


def test_link_parameters_in_a_definition_reach_the_sessions(
    sessions_made: list[LinkOptions],
) -> None:
    pipeline = load_definition(
        """\
[pipeline]
name = "tuned"

[servers.platform]
kind = "keysquare"

[[sources]]
name = "prices"
kind = "keysquare"
server = "platform"
data_type = "Price"
heartbeat_interval = 0.25
heartbeat_deadline = 2
backoff_min = 0.05
backoff_max = 0.3
backoff_factor = 1.5
backoff_jitter = 0

[[sinks]]
name = "publish"
kind = "keysquare_publish"
from = "prices"
server = "platform"
data_type = "Price"
id_field = "id"
backoff_max = 1
"""
    )
    with pipeline:
        assert pipeline.links() == {"prices": "CONNECTED", "publish": "CONNECTED"}
    assert sorted(sessions_made, key=lambda o: o.heartbeat_interval) == [
        LinkOptions(0.25, 2.0, Backoff(min=0.05, max=0.3, factor=1.5, jitter=0.0)),
        LinkOptions(0.5, 5.0, Backoff(min=0.1, max=1.0, factor=2.0, jitter=0.2)),
    ]


def test_a_keysquare_source_without_link_parameters_uses_the_pipeline_defaults(
    make_pipeline: MakePipeline, platform: Platform, sessions_made: list[LinkOptions]
) -> None:
    p = make_pipeline()
    p.source("keysquare", url=platform.url, data_type="Price", **LOGIN).to(print)
    p.start()
    assert sessions_made == [
        LinkOptions(0.5, 5.0, Backoff(min=0.1, max=0.5, factor=2.0, jitter=0.2))
    ]
