"""The indexed fan-out: the same deliveries, in the same order, as matching every record
against every subscription of every session; and the pattern index on its own."""

from __future__ import annotations

import tomllib

from actorwire.adapters.keysquare import keysquare_pb2 as pb
from actorwire.adapters.keysquare.config import AppConfig, PlatformConfig, parse_config
from actorwire.adapters.keysquare.platform import Fanout, Platform, PlatformError
from actorwire.adapters.keysquare.protocol import PatternIndex, matches, topic_key
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from .conftest import RESTRICTED_TOML, record, topic

CONFIG = parse_config(tomllib.loads(RESTRICTED_TOML))

APPS = ("demo", "demo", "reader", "writer")  # demo (reads everything) twice as often
KINDS = (
    ("markets", "Price"),
    ("markets", "Trade"),
    ("refdata", "Instrument"),
    ("refdata", "Trade"),
    ("", "Price"),
    ("other", "Price"),
)


def field(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


# A record's topic, and a pattern: each field empty (any) or one of a few values.
topics = st.tuples(
    st.sampled_from(KINDS), field("src", "demo", ""), field("g", "h", ""), field("A", "B", "")
).map(lambda t: (*t[0], *t[1:]))
patterns = st.tuples(
    field("", "", "markets", "refdata"),
    field("", "Price", "Trade", "Instrument"),
    field("", "", "src", "demo"),
    field("", "", "g", "h"),
    field("", "", "A", "B"),
)
slot = st.integers(0, 5)  # which session (of those registered so far) a rule names
sub_ids = st.integers(0, 4)


def reference_fanout(
    subs_of: dict[str, dict[int, pb.Topic]],
    apps: dict[str, AppConfig],
    records: list[pb.Record],
    kinds: frozenset[tuple[str, str]] | None,
) -> Fanout:
    """Every record against every subscription of every session (the unindexed fan-out)."""
    if kinds is None:
        kinds = frozenset((r.header.schema, r.header.data_type) for r in records)
    result: Fanout = {}
    for session_id, subs in subs_of.items():
        app = apps.get(session_id)
        if app is None:
            continue
        readable = {tid for tid in kinds if app.can_read(*tid)}
        if not readable:
            continue
        for sub_id, pattern in subs.items():
            ok = {
                (s, n)
                for (s, n) in readable
                if (not pattern.schema or s == pattern.schema)
                and (not pattern.data_type or n == pattern.data_type)
            }
            if not ok:
                continue
            if ok == kinds and not (pattern.source or pattern.group or pattern.id):
                got = list(records)
            else:
                got = [
                    r
                    for r in records
                    if (r.header.schema, r.header.data_type) in ok and matches(pattern, r.header)
                ]
            if got:
                result.setdefault(session_id, {})[sub_id] = got
    return result


Shape = list[tuple[str, list[tuple[int, list[int]]]]]


def shape(fanout: Fanout, records: list[pb.Record]) -> Shape:
    """The fan-out with its order: sessions, their subscriptions, and which records (by
    position in the published list, so equal records still count apart)."""
    position = {id(r): i for i, r in enumerate(records)}
    return [
        (sid, [(sub_id, [position[id(r)] for r in got]) for sub_id, got in subs.items()])
        for sid, subs in fanout.items()
    ]


def make_record(fields: tuple[str, str, str, str, str]) -> pb.Record:
    schema, data_type, source, group, id_ = fields
    return record(data_type, id_, schema=schema, source=source, group=group)


class FanoutMachine(RuleBasedStateMachine):
    """Sessions come and go (a dropped id may be handed out again), subscribe, unsubscribe
    and clear; every fan-out equals the unindexed one, order included."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []  # the session id the next register hands out
        self.platform = Platform(CONFIG, new_session_id=lambda: self.ids.pop())
        self.registered: list[str] = []  # every id handed out, dropped ones too
        self.apps: dict[str, AppConfig] = {}  # the model: live sessions ...
        self.subs_of: dict[str, dict[int, pb.Topic]] = {}  # ... their subscriptions, in order

    def session(self, n: int) -> str:
        return self.registered[n % len(self.registered)]

    @rule(app_name=st.sampled_from(APPS), reuse=st.booleans())
    def register(self, app_name: str, reuse: bool) -> None:
        dropped = [s for s in self.registered if s not in self.apps]
        self.ids.append(dropped[0] if reuse and dropped else f"s{len(self.registered)}")
        sid = self.platform.register(app_name, f"{app_name}-secret-key")
        self.registered.append(sid)
        self.apps[sid] = CONFIG.applications[app_name]

    @precondition(lambda self: self.registered)
    @rule(n=slot, sub_id=sub_ids, fields=patterns, cached=st.booleans())
    def subscribe(self, n: int, sub_id: int, fields: tuple[str, ...], cached: bool) -> None:
        sid = self.session(n)
        pattern = topic(fields[1], fields[0], source=fields[2], group=fields[3], id=fields[4])
        try:
            self.platform.subscribe(sid, sub_id, pattern, cached)
        except PlatformError as exc:
            if sid in self.apps:
                subs = self.subs_of.setdefault(sid, {})
                assert exc.code != "INVALID" or sub_id in subs, exc
            else:
                assert exc.code == "UNAUTHENTICATED", exc
        else:
            assert sid in self.apps and sub_id not in self.subs_of.get(sid, {})
            self.subs_of.setdefault(sid, {})[sub_id] = pattern

    @precondition(lambda self: self.registered)
    @rule(n=slot, sub_id=sub_ids)
    def unsubscribe(self, n: int, sub_id: int) -> None:
        sid = self.session(n)
        expected = self.subs_of.get(sid, {}).pop(sub_id, None) is not None
        assert self.platform.unsubscribe(sid, sub_id) == expected

    @precondition(lambda self: self.registered)
    @rule(n=slot)
    def clear(self, n: int) -> None:
        sid = self.session(n)
        assert self.platform.clear_subscriptions(sid) == len(self.subs_of.pop(sid, {}))

    @precondition(lambda self: self.registered)
    @rule(n=slot)
    def drop(self, n: int) -> None:
        sid = self.session(n)
        assert self.platform.drop_session(sid) == (self.apps.pop(sid, None) is not None)
        self.subs_of.pop(sid, None)

    @rule(
        headers=st.lists(topics, min_size=1, max_size=8),
        mode=st.sampled_from(["none", "exact", "more"]),
    )
    def fanout(self, headers: list[tuple[str, str, str, str, str]], mode: str) -> None:
        records = [make_record(h) for h in headers]
        exact = frozenset((r.header.schema, r.header.data_type) for r in records)
        kinds = {
            "none": None,
            "exact": exact,
            "more": exact | {("markets", "Price"), ("refdata", "Instrument")},
        }[mode]
        got = self.platform.fanout(records, kinds)
        want = reference_fanout(self.subs_of, self.apps, records, kinds)
        assert shape(got, records) == shape(want, records)

    @invariant()
    def same_subscriptions(self) -> None:
        assert self.platform.subscription_count == sum(len(s) for s in self.subs_of.values())
        for sid in self.registered:
            assert self.platform.subscriptions(sid) == self.subs_of.get(sid, {})


FanoutMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40)
test_indexed_fanout_equals_matching_every_subscription = FanoutMachine.TestCase


def test_fanout_keeps_publish_order_per_subscription(restricted_config: PlatformConfig) -> None:
    platform = Platform(restricted_config)
    sid = platform.register("demo", "demo-secret-key")
    platform.subscribe(sid, 1, topic("Price", "markets", source="src", group="g", id="A"))
    platform.subscribe(sid, 2, topic("Price", group="g"))
    platform.subscribe(sid, 3, topic())
    records = [record(id=i) for i in "ABAB"] + [record(id="A", group="h")]
    got = platform.fanout(records)
    assert list(got[sid]) == [1, 2, 3]
    assert got[sid][1] == [records[0], records[2]]
    assert got[sid][2] == records[:4]
    assert got[sid][3] == records


def test_fanout_skips_applications_that_may_not_read(restricted_config: PlatformConfig) -> None:
    platform = Platform(restricted_config)
    reader = platform.register("reader", "reader-secret-key")
    platform.subscribe(reader, 1, topic())
    instrument = record("Instrument", schema="refdata", id="I")
    price = record(id="P")
    assert platform.fanout([instrument, price]) == {reader: {1: [price]}}


def test_dropped_session_gets_nothing_and_leaves_no_index(
    restricted_config: PlatformConfig,
) -> None:
    platform = Platform(restricted_config, new_session_id=lambda: "same")
    sid = platform.register("demo", "demo-secret-key")
    for i in range(100):
        platform.subscribe(sid, i, topic("Price", id=f"T{i}"))
    platform.drop_session(sid)
    assert platform.fanout([record(id="T1")]) == {}
    assert len(platform._index) == 0
    # The same id registered again starts with no subscriptions.
    assert platform.register("demo", "demo-secret-key") == sid
    platform.subscribe(sid, 7, topic("Price", id="T7"))
    assert platform.fanout([record(id="T1"), record(id="T7")]) == {sid: {7: [record(id="T7")]}}
    assert len(platform._index) == 1


@given(st.lists(patterns, max_size=12), st.lists(topics, max_size=6))
def test_pattern_index_matches_like_matches(
    patterns: list[tuple[str, str, str, str, str]], keys: list[tuple[str, str, str, str, str]]
) -> None:
    index: PatternIndex[int] = PatternIndex()
    filed = dict(enumerate(patterns))
    for n, pattern in filed.items():
        index.add(n, pattern)
        index.add(n, pattern)  # filed once however often it is added
    for n in list(filed)[::3]:
        index.remove(n)
        del filed[n]
    assert len(index) == len(filed)
    for key in keys:
        header = pb.KeyHeader(
            schema=key[0], data_type=key[1], source=key[2], group=key[3], id=key[4]
        )
        want = sorted(
            n
            for n, p in filed.items()
            if matches(
                pb.Topic(schema=p[0], data_type=p[1], source=p[2], group=p[3], id=p[4]), header
            )
        )
        assert sorted(index.match(key)) == want
        assert topic_key(header) == key


def test_fanout_of_one_record_finds_only_its_subscription(
    restricted_config: PlatformConfig,
) -> None:
    subscriptions = 5_000
    platform = Platform(restricted_config)
    sid = platform.register("demo", "demo-secret-key")
    for i in range(subscriptions):
        platform.subscribe(sid, i, topic("Price", "markets", source="src", group="g", id=f"T{i}"))
    # The index holds one bucket per topic: a record's lookup finds its own subscription.
    assert platform._index.match(("markets", "Price", "src", "g", "T42")) == [
        s for s in platform._indexed[sid][1].values() if s[3] == 42
    ]
    records = [record(id=f"T{i}") for i in range(subscriptions)]
    got = platform.fanout(records)
    assert {sub: [r.header.id for r in rs] for sub, rs in got[sid].items()} == {
        i: [f"T{i}"] for i in range(subscriptions)
    }
