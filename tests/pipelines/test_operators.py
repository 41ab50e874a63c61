"""Operators as plain objects: records in, outputs out, time passed in; the factory registry."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from actorwire.pipelines.operators import (
    KEY_FIELD,
    OPERATORS,
    Batch,
    Conflate,
    Dedupe,
    Filter,
    FlatMap,
    KeyBy,
    Map,
    Operator,
    SlidingWindow,
    Tap,
    Throttle,
    TumblingWindow,
    make_operator,
    resolve_callable,
)
from hypothesis import given
from hypothesis import strategies as st

# Minimal parameters for each kind, as a definition file would give them.
MINIMAL: dict[str, dict[str, Any]] = {
    "map": {"fn": "builtins:dict"},
    "filter": {"predicate": "builtins:bool"},
    "flat_map": {"fn": "builtins:list"},
    "tap": {"fn": "builtins:id"},
    "key_by": {"key": "symbol"},
    "conflate": {"interval": 0.5},
    "dedupe": {},
    "batch": {},
    "throttle": {"rate": 10},
    "tumbling_window": {"size": 60},
    "sliding_window": {"size": 60, "slide": 15},
}


def double(record: dict[str, Any]) -> dict[str, Any]:
    """A module-level function for "module:function" references in these tests."""
    return {**record, "x": record["x"] * 2}


NOT_CALLABLE = 42


def drive(op: Operator, events: list[tuple[float, Any]]) -> list[tuple[float, Any]]:
    """Feed ``(now, record)`` events, ticking whenever a deadline falls due before each one,
    as a stage actor would; return ``(emitted_at, output)`` pairs including the final flush.
    """
    out: list[tuple[float, Any]] = []
    last = 0.0
    for now, record in events:
        while (deadline := op.next_deadline()) is not None and deadline <= now:
            at = max(deadline, last)
            out += [(at, o) for o in op.on_tick(at)]
            last = at
        out += [(now, o) for o in op.on_record(record, now)]
        last = now
    out += [(last, o) for o in op.flush(last)]
    return out


class TestContract:
    @pytest.mark.parametrize("kind", sorted(OPERATORS))
    def test_every_kind_builds_and_satisfies_the_operator_protocol(self, kind: str) -> None:
        op = make_operator(kind, **MINIMAL[kind])
        assert isinstance(op, Operator)
        assert type(op).kind == kind
        assert all(isinstance(v, int) for v in op.stats().values())

    def test_minimal_parameters_cover_every_kind(self) -> None:
        assert set(MINIMAL) == set(OPERATORS)

    @pytest.mark.parametrize("kind", sorted(OPERATORS))
    def test_a_fresh_operator_holds_nothing(self, kind: str) -> None:
        op = make_operator(kind, **MINIMAL[kind])
        assert op.next_deadline() is None
        assert op.on_tick(1e9) == []
        assert op.flush(1e9) == []


class TestStateless:
    def test_map_emits_fn_of_each_record(self) -> None:
        op = Map(lambda r: r["x"] + 1)
        assert op.on_record({"x": 1}, 0.0) == [2]

    def test_map_takes_a_module_function_reference(self) -> None:
        op = Map(f"{__name__}:double")
        assert op.on_record({"x": 3}, 0.0) == [{"x": 6}]

    def test_map_errors_propagate_to_the_caller(self) -> None:
        op = Map(lambda r: 1 / r["x"])
        with pytest.raises(ZeroDivisionError):
            op.on_record({"x": 0}, 0.0)
        assert op.on_record({"x": 2}, 0.0) == [0.5]

    def test_filter_passes_matching_and_counts_the_rest(self) -> None:
        op = Filter(lambda r: r["x"] > 1)
        outs = [op.on_record({"x": x}, 0.0) for x in (0, 1, 2, 3)]
        assert outs == [[], [], [{"x": 2}], [{"x": 3}]]
        assert op.stats() == {"filtered": 2}

    def test_flat_map_emits_every_item_in_order(self) -> None:
        op = FlatMap(lambda r: iter(range(r["n"])))
        assert op.on_record({"n": 3}, 0.0) == [0, 1, 2]
        assert op.on_record({"n": 0}, 0.0) == []

    def test_tap_calls_fn_and_passes_the_same_record(self) -> None:
        seen: list[Any] = []
        op = Tap(seen.append)
        record = {"x": 1}
        out = op.on_record(record, 0.0)
        assert out == [record]
        assert out[0] is record
        assert seen == [record]

    def test_non_callable_fn_is_rejected_naming_the_parameter(self) -> None:
        with pytest.raises(TypeError, match=r"map: fn must be a callable or a 'module:function'"):
            Map(42)  # type: ignore[arg-type]


class TestKeyBy:
    def test_key_by_field_stamps_key_on_a_copy(self) -> None:
        record = {"symbol": "A", "x": 1}
        [out] = KeyBy("symbol").on_record(record, 0.0)
        assert out == {"symbol": "A", "x": 1, KEY_FIELD: "A"}
        assert KEY_FIELD not in record

    def test_key_by_without_copy_stamps_in_place(self) -> None:
        record = {"symbol": "A"}
        [out] = KeyBy("symbol", copy=False).on_record(record, 0.0)
        assert out is record
        assert record[KEY_FIELD] == "A"

    def test_key_by_list_of_fields_makes_a_tuple(self) -> None:
        op = KeyBy(["venue", "symbol"])
        assert op.on_record({"venue": "X", "symbol": "A"}, 0.0)[0][KEY_FIELD] == ("X", "A")
        assert KeyBy(["symbol"]).on_record({"symbol": "A"}, 0.0)[0][KEY_FIELD] == ("A",)

    def test_key_by_callable_and_fn_reference(self) -> None:
        assert KeyBy(lambda r: r["x"] % 2).on_record({"x": 3}, 0.0)[0][KEY_FIELD] == 1
        op = make_operator("key_by", fn="builtins:len")
        assert op.on_record({"a": 1, "b": 2}, 0.0)[0][KEY_FIELD] == 2

    def test_key_by_needs_exactly_one_of_key_and_fn(self) -> None:
        with pytest.raises(TypeError, match="exactly one of key"):
            KeyBy()
        with pytest.raises(TypeError, match="exactly one of key"):
            KeyBy("a", fn=len)

    def test_key_by_missing_field_raises_key_error(self) -> None:
        with pytest.raises(KeyError):
            KeyBy("symbol").on_record({"x": 1}, 0.0)

    def test_bad_key_spec_is_rejected(self) -> None:
        with pytest.raises(TypeError, match=r"key must be a field name, a list of field names"):
            KeyBy(key=[1, 2])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="non-empty field name"):
            KeyBy(key="")

    def test_keyed_operators_use_the_stamped_key_by_default(self) -> None:
        keyed = KeyBy("symbol")
        dedupe = Dedupe()
        out = []
        for rec in (
            {"symbol": "A", "seq": 1},
            {"symbol": "B", "seq": 1},
            {"symbol": "A", "seq": 1},
        ):
            for r in keyed.on_record(rec, 0.0):
                out += dedupe.on_record(r, 0.0)
        assert [r["symbol"] for r in out] == ["A", "B"]


class TestConflate:
    def test_first_record_of_a_key_passes_at_once(self) -> None:
        op = Conflate(1.0, key="k")
        assert op.on_record({"k": "a", "v": 1}, 10.0) == [{"k": "a", "v": 1}]
        assert op.on_record({"k": "b", "v": 1}, 10.1) == [{"k": "b", "v": 1}]

    def test_records_within_the_interval_are_held_and_the_latest_released_on_tick(self) -> None:
        op = Conflate(1.0, key="k")
        op.on_record({"k": "a", "v": 1}, 10.0)
        assert op.on_record({"k": "a", "v": 2}, 10.2) == []
        assert op.on_record({"k": "a", "v": 3}, 10.5) == []
        assert op.next_deadline() == 11.0
        assert op.on_tick(10.9) == []
        assert op.on_tick(11.0) == [{"k": "a", "v": 3}]
        assert op.next_deadline() is None
        assert op.stats() == {"conflated": 1}

    def test_a_release_starts_the_next_interval(self) -> None:
        op = Conflate(1.0, key="k")
        op.on_record({"k": "a", "v": 1}, 0.0)
        op.on_record({"k": "a", "v": 2}, 0.5)
        assert op.on_tick(1.25) == [{"k": "a", "v": 2}]
        assert op.on_record({"k": "a", "v": 3}, 2.0) == []
        assert op.next_deadline() == 2.25
        assert op.on_record({"k": "a", "v": 4}, 2.25) == [{"k": "a", "v": 4}]
        assert op.stats() == {"conflated": 1}
        assert op.next_deadline() is None

    def test_a_record_after_the_interval_passes_at_once(self) -> None:
        op = Conflate(1.0, key="k")
        op.on_record({"k": "a", "v": 1}, 0.0)
        assert op.on_record({"k": "a", "v": 2}, 1.0) == [{"k": "a", "v": 2}]

    def test_the_interval_may_be_given_in_milliseconds(self) -> None:
        op = make_operator("conflate", interval_ms=250, key="k")
        op.on_record({"k": "a", "v": 1}, 10.0)
        assert op.on_record({"k": "a", "v": 2}, 10.1) == []
        assert op.next_deadline() == 10.25
        with pytest.raises(TypeError, match="exactly one of them"):
            make_operator("conflate", interval=1.0, interval_ms=1000, key="k")
        with pytest.raises(TypeError, match="exactly one of them"):
            make_operator("conflate", key="k")
        with pytest.raises(ValueError, match="interval_ms"):
            make_operator("conflate", interval_ms=0, key="k")

    def test_keys_are_conflated_independently(self) -> None:
        op = Conflate(1.0, key="k")
        for k in "ab":
            op.on_record({"k": k, "v": 0}, 0.0)
        op.on_record({"k": "a", "v": 1}, 0.1)
        op.on_record({"k": "b", "v": 1}, 0.2)
        op.on_record({"k": "a", "v": 2}, 0.3)
        assert op.on_tick(1.0) == [{"k": "a", "v": 2}, {"k": "b", "v": 1}]

    def test_flush_releases_every_held_record(self) -> None:
        op = Conflate(5.0, key="k")
        for k in "abc":
            op.on_record({"k": k, "v": 0}, 0.0)
            op.on_record({"k": k, "v": 1}, 1.0)
        assert op.flush(2.0) == [{"k": k, "v": 1} for k in "abc"]
        assert op.next_deadline() is None
        assert op.flush(2.0) == []

    def test_bad_interval_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="conflate: interval must be a finite number"):
            Conflate(0)
        with pytest.raises(TypeError, match="conflate: interval must be a number"):
            Conflate("1s")  # type: ignore[arg-type]

    @given(
        st.lists(
            st.tuples(st.sampled_from("abc"), st.floats(min_value=0.0, max_value=0.7)),
            max_size=80,
        ),
        st.sampled_from([0.1, 0.25, 1.0]),
    )
    def test_at_most_one_per_key_per_interval_and_the_latest_always_emitted(
        self, steps: list[tuple[str, float]], interval: float
    ) -> None:
        op = Conflate(interval, key="k")
        now, out = 0.0, []
        for i, (k, dt) in enumerate(steps):
            now += dt
            while (deadline := op.next_deadline()) is not None and deadline <= now:
                out += [(deadline, rec) for rec in op.on_tick(deadline)]
            out += [(now, rec) for rec in op.on_record({"k": k, "i": i}, now)]
        for _ in range(len(steps) + 1):  # then let every held record fall due
            if (deadline := op.next_deadline()) is None:
                break
            out += [(deadline, rec) for rec in op.on_tick(deadline)]
        assert op.flush(now + 100) == []
        by_key: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for at, rec in out:
            by_key[rec["k"]].append((at, rec["i"]))
        last_input = {k: i for i, (k, _) in enumerate(steps)}
        assert set(by_key) == set(last_input)
        for k, emitted in by_key.items():
            times = [at for at, _ in emitted]
            assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(times))
            ids = [i for _, i in emitted]
            assert ids == sorted(set(ids))  # in input order, never twice
            assert ids[-1] == last_input[k]


class TestDedupe:
    def test_duplicates_and_older_sequence_numbers_are_dropped(self) -> None:
        op = Dedupe(key="k")
        seqs = [1, 2, 2, 1, 3, 5, 4, 6]
        passed = [s for s in seqs if op.on_record({"k": "a", "seq": s}, 0.0)]
        assert passed == [1, 2, 3, 5, 6]
        assert op.stats() == {"duplicates": 3, "evicted": 0}

    def test_keys_are_independent(self) -> None:
        op = Dedupe(key="k")
        assert op.on_record({"k": "a", "seq": 5}, 0.0)
        assert op.on_record({"k": "b", "seq": 1}, 0.0)

    def test_seq_field_and_callable(self) -> None:
        assert Dedupe(key="k", seq="n").on_record({"k": 1, "n": 1}, 0.0)
        op = Dedupe(key="k", seq=lambda r: r["v"]["seq"])
        assert op.on_record({"k": 1, "v": {"seq": 2}}, 0.0)
        assert not op.on_record({"k": 1, "v": {"seq": 2}}, 0.0)

    def test_memory_is_bounded_with_least_recently_seen_evicted(self) -> None:
        op = Dedupe(key="k", max_keys=2)
        op.on_record({"k": "a", "seq": 5}, 0.0)
        op.on_record({"k": "b", "seq": 5}, 0.0)
        op.on_record({"k": "a", "seq": 5}, 0.0)  # a duplicate still marks "a" as recent
        op.on_record({"k": "c", "seq": 5}, 0.0)  # evicts "b"
        assert op.stats()["evicted"] == 1
        assert not op.on_record({"k": "a", "seq": 5}, 0.0)
        assert op.on_record({"k": "b", "seq": 1}, 0.0)  # "b" was forgotten: starts afresh

    def test_bad_parameters_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="dedupe: max_keys must be >= 1"):
            Dedupe(max_keys=0)
        with pytest.raises(TypeError, match="dedupe: seq must be a field name or a callable"):
            Dedupe(seq=3)  # type: ignore[arg-type]

    @given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 20)), max_size=100))
    def test_never_passes_a_duplicate_and_passes_each_new_high(
        self, frames: list[tuple[str, int]]
    ) -> None:
        op = Dedupe(key="k", max_keys=10)
        passed = [f for f in frames if op.on_record({"k": f[0], "seq": f[1]}, 0.0)]
        assert len(passed) == len(set(passed))
        high: dict[str, int] = {}
        expected = []
        for k, s in frames:
            if k not in high or s > high[k]:
                high[k] = s
                expected.append((k, s))
        assert passed == expected
        assert op.stats()["duplicates"] == len(frames) - len(passed)


class TestBatch:
    def test_emits_a_list_when_size_records_are_held(self) -> None:
        op = Batch(3, max_delay=None)
        outs = [op.on_record(i, float(i)) for i in range(7)]
        assert outs == [[], [], [[0, 1, 2]], [], [], [[3, 4, 5]], []]
        assert op.next_deadline() is None
        assert op.flush(7.0) == [[6]]
        assert op.stats() == {"batches": 3}

    def test_emits_max_delay_after_the_first_held_record(self) -> None:
        op = Batch(100, max_delay=0.5)
        op.on_record("a", 10.0)
        op.on_record("b", 10.3)
        assert op.next_deadline() == 10.5
        assert op.on_tick(10.4) == []
        assert op.on_tick(10.5) == [["a", "b"]]
        assert op.next_deadline() is None
        op.on_record("c", 11.0)
        assert op.next_deadline() == 11.5

    def test_time_only_batches(self) -> None:
        op = Batch(None, max_delay=1.0)
        for i in range(1000):
            assert op.on_record(i, 0.0) == []
        assert op.on_tick(1.0) == [list(range(1000))]

    def test_needs_a_size_or_a_delay(self) -> None:
        with pytest.raises(ValueError, match="batch: give size, max_delay or both"):
            Batch(None, max_delay=None)
        with pytest.raises(ValueError, match="batch: size must be >= 1"):
            Batch(0)

    @given(
        st.lists(st.floats(min_value=0.0, max_value=0.4), max_size=60),
        st.integers(1, 7),
        st.sampled_from([None, 0.3, 1.0]),
    )
    def test_preserves_order_and_loses_nothing(
        self, gaps: list[float], size: int, max_delay: float | None
    ) -> None:
        op = Batch(size, max_delay=max_delay)
        now, events = 0.0, []
        for i, dt in enumerate(gaps):
            now += dt
            events.append((now, i))
        batches = [b for _, b in drive(op, events)]
        assert [x for b in batches for x in b] == list(range(len(gaps)))
        assert all(0 < len(b) <= size for b in batches)


class TestThrottle:
    def test_burst_passes_then_excess_is_delayed_and_released_on_tick(self) -> None:
        op = Throttle(2.0, burst=2)
        outs = [op.on_record(i, 0.0) for i in range(4)]
        assert outs == [[0], [1], [], []]
        assert op.next_deadline() == pytest.approx(0.5)
        assert op.on_tick(0.5) == [2]
        assert op.next_deadline() == pytest.approx(1.0)
        assert op.on_tick(1.0) == [3]
        assert op.next_deadline() is None
        assert op.stats() == {"dropped": 0, "delayed": 2}

    def test_queued_records_keep_their_order_ahead_of_new_ones(self) -> None:
        op = Throttle(1.0)
        op.on_record("a", 0.0)
        op.on_record("b", 0.1)
        assert op.on_record("c", 1.5) == []  # a token is back, but "b" is queued first
        assert op.on_tick(1.5) == ["b"]

    def test_drop_policy_counts_excess(self) -> None:
        op = Throttle(1.0, policy="drop")
        assert [op.on_record(i, 0.0) for i in range(3)] == [[0], [], []]
        assert op.next_deadline() is None
        assert op.on_record(3, 1.0) == [3]
        assert op.stats() == {"dropped": 2, "delayed": 0}

    def test_full_queue_drops_and_counts(self) -> None:
        op = Throttle(1.0, max_queue=2)
        for i in range(5):
            op.on_record(i, 0.0)
        assert op.stats() == {"dropped": 2, "delayed": 2}
        assert op.flush(0.0) == [1, 2]

    def test_flush_releases_the_whole_queue(self) -> None:
        op = Throttle(1.0)
        for i in range(10):
            op.on_record(i, 0.0)
        assert op.flush(0.0) == list(range(1, 10))
        assert op.next_deadline() is None

    def test_bad_parameters_are_rejected(self) -> None:
        with pytest.raises(ValueError, match=r"throttle: policy must be one of 'delay', 'drop'"):
            Throttle(1.0, policy="block")
        with pytest.raises(ValueError, match="throttle: rate must be a finite number of records"):
            Throttle(-1.0)
        with pytest.raises(ValueError, match="throttle: burst must be >= 1"):
            Throttle(1.0, burst=0)

    @given(
        st.lists(st.floats(min_value=0.0, max_value=0.3), max_size=80),
        st.sampled_from([1.0, 5.0, 20.0]),
        st.integers(1, 4),
    )
    def test_never_exceeds_the_rate_and_loses_nothing_with_delay(
        self, gaps: list[float], rate: float, burst: int
    ) -> None:
        op = Throttle(rate, burst=burst)
        now, out = 0.0, []
        for i, dt in enumerate(gaps):
            now += dt
            while (deadline := op.next_deadline()) is not None and deadline <= now:
                out += [(deadline, x) for x in op.on_tick(deadline)]
            out += [(now, x) for x in op.on_record(i, now)]
        for _ in range(len(gaps) + 1):  # then let the queue drain at the paced rate
            if (deadline := op.next_deadline()) is None:
                break
            out += [(deadline, x) for x in op.on_tick(deadline)]
        assert op.next_deadline() is None
        assert [x for _, x in out] == list(range(len(gaps)))
        times = [at for at, _ in out]
        # Any span of T seconds holds at most burst + rate * T releases.
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                assert j - i + 1 <= burst + rate * (times[j] - start) + 1e-6


class TestMakeOperator:
    def test_unknown_kind_names_it_and_close_matches(self) -> None:
        with pytest.raises(ValueError, match=r"unknown operator kind 'mapp'; did you mean 'map'"):
            make_operator("mapp", fn=len)

    def test_unknown_kind_lists_known_kinds(self) -> None:
        with pytest.raises(ValueError, match=r"known: batch, conflate, dedupe"):
            make_operator("zzz")

    def test_unknown_parameter_names_it_and_suggests(self) -> None:
        with pytest.raises(
            TypeError, match=r"conflate: unknown parameter 'intervl' \(did you mean"
        ):
            make_operator("conflate", intervl=1.0)

    def test_missing_parameter_names_it_and_lists_parameters(self) -> None:
        with pytest.raises(
            TypeError, match=r"sliding_window: missing parameter 'slide'; parameters: size, slide"
        ):
            make_operator("sliding_window", size=60)

    def test_bad_value_names_parameter_and_expectation(self) -> None:
        with pytest.raises(TypeError, match=r"batch: size must be an integer >= 1, got '10'"):
            make_operator("batch", size="10")
        with pytest.raises(ValueError, match=r"tumbling_window: size must be a finite number"):
            make_operator("tumbling_window", size=-1)

    def test_bad_callable_reference_names_the_parameter_and_spec(self) -> None:
        with pytest.raises(ValueError, match=r"filter: predicate: cannot resolve 'math:nope'"):
            make_operator("filter", predicate="math:nope")

    def test_builds_a_working_operator_from_definition_style_params(self) -> None:
        op = make_operator("map", fn=f"{__name__}:double")
        assert op.on_record({"x": 2}, 0.0) == [{"x": 4}]

    def test_operators_map_kinds_to_constructors(self) -> None:
        assert OPERATORS["tumbling_window"] is TumblingWindow
        assert OPERATORS["sliding_window"] is SlidingWindow


class TestResolveCallable:
    def test_resolves_module_function(self) -> None:
        import math

        assert resolve_callable("math:sqrt") is math.sqrt
        assert resolve_callable(" os.path : join ") is __import__("os").path.join

    def test_resolves_dotted_attributes(self) -> None:
        from collections import OrderedDict

        assert resolve_callable("collections:OrderedDict.fromkeys") == OrderedDict.fromkeys

    @pytest.mark.parametrize("spec", ["math.sqrt", "math:", ":sqrt", ""])
    def test_malformed_spec(self, spec: str) -> None:
        with pytest.raises(ValueError, match="is not a 'module:function' reference"):
            resolve_callable(spec)

    def test_non_string(self) -> None:
        with pytest.raises(TypeError, match="expected a 'module:function' string"):
            resolve_callable(42)  # type: ignore[arg-type]

    def test_module_not_found(self) -> None:
        with pytest.raises(
            ValueError, match=r"'no_such_mod\.sub:f': module 'no_such_mod\.sub' not"
        ):
            resolve_callable("no_such_mod.sub:f")

    def test_module_failing_to_import(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "aw_broken_mod.py").write_text("import aw_missing_dependency\n")
        (tmp_path / "aw_raising_mod.py").write_text("raise RuntimeError('boom')\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "aw_broken_mod", raising=False)
        with pytest.raises(ValueError, match=r"importing 'aw_broken_mod' failed: .*aw_missing_dep"):
            resolve_callable("aw_broken_mod:f")
        with pytest.raises(
            ValueError, match=r"importing 'aw_raising_mod' failed: RuntimeError: boom"
        ):
            resolve_callable("aw_raising_mod:f")

    def test_missing_attribute(self) -> None:
        with pytest.raises(
            ValueError, match=r"cannot resolve 'math:nope': 'math' has no attribute"
        ):
            resolve_callable("math:nope")
        with pytest.raises(ValueError, match=r"'collections:OrderedDict' has no attribute 'x'"):
            resolve_callable("collections:OrderedDict.x")

    def test_not_callable(self) -> None:
        with pytest.raises(ValueError, match=r"it is a int, not callable"):
            resolve_callable(f"{__name__}:NOT_CALLABLE")

    def test_module_docstring_documents_the_contract(self) -> None:
        import actorwire.pipelines.operators as mod

        doc = textwrap.dedent(mod.__doc__ or "")
        for name in ("on_record", "on_tick", "next_deadline", "flush", "stats", "_key"):
            assert name in doc


class TestFlush:
    @given(
        st.sampled_from(["conflate", "batch", "throttle", "tumbling_window", "sliding_window"]),
        st.lists(
            st.tuples(st.sampled_from("ab"), st.floats(min_value=0.0, max_value=0.5)),
            max_size=40,
        ),
    )
    def test_flush_releases_everything_held(
        self, kind: str, steps: list[tuple[str, float]]
    ) -> None:
        params = {
            "conflate": {"interval": 1.0, "key": "k"},
            "batch": {"size": 1000, "max_delay": 5.0},
            "throttle": {"rate": 2.0},
            "tumbling_window": {"size": 1.0, "key": "k"},
            "sliding_window": {"size": 1.0, "slide": 0.5, "key": "k"},
        }[kind]
        op = make_operator(kind, **params)
        now, out = 0.0, []
        for i, (k, dt) in enumerate(steps):
            now += dt
            out += op.on_record({"k": k, "i": i}, now)
        out += op.flush(now)
        assert op.next_deadline() is None
        assert op.on_tick(now + 1e6) == []
        assert op.flush(now + 1e6) == []
        if kind == "batch":
            assert [r["i"] for b in out for r in b] == list(range(len(steps)))
        elif kind == "throttle":
            assert [r["i"] for r in out] == list(range(len(steps)))
        elif kind == "tumbling_window":
            assert sum(r["count"] for r in out) == len(steps)
        elif kind == "conflate":
            last = {k: i for i, (k, _) in enumerate(steps)}
            assert {k: max(r["i"] for r in out if r["k"] == k) for k in last} == last
