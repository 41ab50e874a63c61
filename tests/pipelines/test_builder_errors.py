"""Building a pipeline: every bad argument, option, kind or edge raises at once with the
value and what was expected, and roles are inferred from the kind and the inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from actorwire.actors import Actor, ActorSystem
from actorwire.pipelines import OperatorBase, Pipeline, Sink, Source

MakePipeline = Callable[..., Pipeline]


class Nothing(Source):
    """A source that produces nothing."""


class Discard(Sink):
    def write(self, records: list[Any], now: float) -> None:
        pass


class Passthrough(OperatorBase):
    def on_record(self, record: Any, now: float) -> list[Any]:
        return [record]


class Worker(Actor):
    pass


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": ""}, ValueError, "Pipeline name must be a non-empty string, got ''"),
        ({"system": "mine"}, TypeError, "system must be an ActorSystem, got 'mine'"),
        ({"intensity": -1}, ValueError, "intensity must be an integer >= 0, got -1"),
        ({"intensity": True}, ValueError, "intensity must be an integer >= 0, got True"),
        ({"period": 0}, ValueError, "period must be a number of seconds > 0, got 0"),
        ({"backoff": 1.0}, TypeError, "backoff must be a Backoff, got 1.0"),
        ({"capacity": 0}, ValueError, "pipeline: capacity must be an integer >= 1 or None"),
        ({"put_timeout": -1}, ValueError, "pipeline: put_timeout must be seconds >= 0"),
        ({"on_error": "ignore"}, ValueError, "pipeline: on_error must be 'skip' or 'restart'"),
        ({"strategy": "one_for_some"}, ValueError, "strategy must be one of one_for_one"),
    ],
)
def test_bad_pipeline_arguments_raise_naming_the_value(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments = {"name": "p", **kwargs}
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        Pipeline(**arguments)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"capacity": 0}, "stage 's': capacity must be an integer >= 1 or None, got 0"),
        ({"capacity": 2.5}, "stage 's': capacity must be an integer >= 1 or None, got 2.5"),
        ({"put_timeout": -0.5}, "stage 's': put_timeout must be seconds >= 0 or None, got -0.5"),
        ({"put_timeout": True}, "stage 's': put_timeout must be seconds >= 0 or None, got True"),
        ({"on_error": "retry"}, "stage 's': on_error must be 'skip' or 'restart', got 'retry'"),
        ({"shutdown_timeout": 0}, "stage 's': shutdown_timeout must be seconds > 0, got 0"),
        ({"restart": "sometimes"}, "stage 's': restart must be one of permanent"),
    ],
)
def test_bad_stage_options_raise_naming_the_stage(
    make_pipeline: MakePipeline, options: dict[str, Any], message: str
) -> None:
    p = make_pipeline()
    src = p.source("inlet", name="in")
    with pytest.raises(ValueError, match=message):
        src.to(print, name="s", **options)
    assert [s.name for s in p.stages] == ["in"]


def test_a_mailbox_key_must_be_a_field_name_or_a_function(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    src = p.source("inlet", name="in")
    with pytest.raises(TypeError, match="mailbox_key must be a field name or a function, got 42"):
        src.to(print, name="s", overflow="conflate", capacity=4, mailbox_key=42)


def test_a_function_mailbox_key_conflates_on_its_value_or_on_the_repr_of_an_unhashable_one(
    make_pipeline: MakePipeline,
) -> None:
    p = make_pipeline()
    src = p.source("inlet", name="in")
    handle = src.to(print, name="s", overflow="conflate", capacity=4, mailbox_key=lambda r: r["k"])
    key = handle.spec.mailbox().key
    assert key is not None
    assert key({"k": "AAPL", "price": 1}) == key({"k": "AAPL", "price": 2}) == "AAPL"
    assert key({"k": ["a", 1]}) == ("unhashable", "['a', 1]")
    by_field = src.to(print, name="t", overflow="conflate", capacity=4, mailbox_key="k")
    field_key = by_field.spec.mailbox().key
    assert field_key is not None
    assert field_key({"k": {"x": 1}}) == ("unhashable", "{'x': 1}")


def test_handles_wire_fan_in_into_existing_stages(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    a = p.source("inlet", name="a")
    b = p.source("inlet", name="b")
    c = p.source("inlet", name="c")
    join = a.then(Passthrough, name="join")
    assert b.then(join) is join
    sink = p.merge(a, b).to(print, name="sink")
    assert p.merge(c).then(join) is join
    assert p.merge(join, c).to(sink) is sink
    assert p.spec("join").inputs == ["a", "b", "c"]
    assert p.spec("sink").inputs == ["a", "b", "join", "c"]
    assert repr(join) == f"StageHandle({p.name!r}, 'join')"


def test_to_an_address_takes_no_name_or_parameters(make_pipeline: MakePipeline) -> None:
    with ActorSystem("to-address") as system:
        outside = system.spawn(Worker, name="outside")
        p = make_pipeline(system=system)
        src = p.source("inlet", name="in")
        with pytest.raises(TypeError, match=r"to\(address\) takes no name or parameters"):
            src.to(outside, name="out")
        with pytest.raises(TypeError, match=r"to\(address\) takes no name or parameters"):
            src.to(outside, capacity=3)
        assert p.spec("in").external == []


def test_merge_needs_handles_of_its_own_pipeline(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    other = make_pipeline()
    theirs = other.source("inlet", name="theirs")
    with pytest.raises(ValueError, match="merge needs at least one stage handle"):
        p.merge()
    with pytest.raises(TypeError, match="merge takes handles of this pipeline's stages"):
        p.merge(theirs)
    with pytest.raises(TypeError, match="merge takes handles of this pipeline's stages"):
        p.merge("theirs")  # type: ignore[arg-type]


def test_roles_are_inferred_from_the_kind_and_the_inputs(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    p.add_stage("in", "inlet")
    p.add_stage("actor", Worker, inputs=["in"])
    p.add_stage("sink-class", Discard, inputs=["in"])
    p.add_stage("sink-object", Discard(), inputs=["in"])
    p.add_stage("file", "jsonl_file", {"path": "never-opened.jsonl"}, ["in"])
    p.add_stage("op", Passthrough, inputs=["in"])
    p.add_stage("source-class", Nothing)
    roles = {s.name: s.role for s in p.stages}
    assert roles == {
        "in": "source",
        "actor": "actor",
        "sink-class": "sink",
        "sink-object": "sink",
        "file": "sink",
        "op": "operator",
        "source-class": "source",
    }


@pytest.mark.parametrize(
    ("role", "kind", "params", "error", "message"),
    [
        ("actor", Passthrough, {}, TypeError, "role 'actor' needs an Actor subclass"),
        ("sink", Passthrough, {}, TypeError, "a sink class must subclass Sink"),
        ("source", Discard, {}, TypeError, "a source class must subclass Source"),
        ("sink", print, {"end": ""}, TypeError, r"parameters \['end'\] go with a kind or a class"),
        ("source", print, {}, TypeError, "a function cannot be a source"),
        ("source", Discard(), {}, TypeError, "a source must be a kind name or a Source"),
        ("sink", Nothing(), {}, TypeError, "a sink must be a kind name, a Sink or a function"),
        ("operator", object(), {}, TypeError, "an operator must implement on_record, on_tick"),
    ],
)
def test_a_kind_that_cannot_play_its_role_is_refused(
    make_pipeline: MakePipeline,
    role: str,
    kind: Any,
    params: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    p = make_pipeline()
    p.source("inlet", name="in")
    inputs = [] if role == "source" else ["in"]
    with pytest.raises(error, match=message):
        p.add_stage("x", kind, params, inputs, role=role)  # type: ignore[arg-type]
    assert [s.name for s in p.stages] == ["in"]


def test_bad_edges_are_refused(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    src = p.source("inlet", name="in")
    one = src.then(Passthrough, name="one")
    two = one.then(Passthrough, name="two")
    three = two.then(Passthrough, name="three")
    with pytest.raises(ValueError, match=r"stage 'x': a source takes no inputs, got \['in'\]"):
        p.add_stage("x", "inlet", inputs=["in"], role="source")
    with pytest.raises(ValueError, match="stage 'x': a operator needs at least one input"):
        p.add_stage("x", Passthrough, role="operator")
    with pytest.raises(ValueError, match=r"unknown stage 'nowhere' \(stages: in, one, two"):
        p.connect("in", "nowhere")
    with pytest.raises(ValueError, match="stage 'in' is a source: it takes no inputs"):
        p.connect("one", "in")
    with pytest.raises(ValueError, match="stage 'in' already feeds 'one'"):
        p.connect("in", "one")
    with pytest.raises(ValueError, match="feeding 'one' from 'three' would make a cycle"):
        three.then(one)
    assert p.spec("one").inputs == ["in"]


@pytest.mark.parametrize("name", ["", " padded ", 3])
def test_a_stage_name_must_be_a_non_empty_trimmed_string(
    make_pipeline: MakePipeline, name: Any
) -> None:
    p = make_pipeline()
    with pytest.raises(ValueError, match="stage name must be a non-empty string, got"):
        p.source("inlet", name=name)


def test_unknown_stages_are_named_with_the_known_ones(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    with pytest.raises(KeyError, match=r"unknown stage 'x' \(stages: none yet\)"):
        p.spec("x")
    p.source("inlet", name="in")
    with pytest.raises(KeyError, match=r"unknown stage 'x' \(stages: in\)"):
        p.handle("x")
    assert p.handle("in").name == "in"


def test_a_pipeline_is_inspectable_before_it_starts(make_pipeline: MakePipeline) -> None:
    p = make_pipeline("before")
    with pytest.raises(ValueError, match="pipeline 'before' has no stages"):
        p.start()
    p.source("inlet", name="in").to(print, name="out")
    assert repr(p) == "<Pipeline 'before' stages=2 new>"
    with pytest.raises(RuntimeError, match="pipeline 'before' is not running: stage 'in'"):
        p.address("in")
    assert p.dispatcher_stats() == {}
    assert p.links() == {}
    assert p.failure is None
    with pytest.raises(ValueError, match="duration must be seconds >= 0 or None, got -1"):
        p.run(duration=-1)
    assert p.stop() is True  # never started: nothing to drain
    assert repr(p) == "<Pipeline 'before' stages=2 stopped>"
