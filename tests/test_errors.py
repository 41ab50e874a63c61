"""Every exception actorwire defines derives from ActorwireError and keeps its standard type."""

from __future__ import annotations

import pytest
from actorwire.actors import (
    ActorStartError,
    ActorwireError,
    MailboxFull,
    PoolExhausted,
    SupervisorEscalation,
)
from actorwire.actors.link import AuthRefused
from actorwire.actors.tomlcheck import TomlError
from actorwire.adapters.jupyter.protocol import MessageError, ReplayError, SignatureError
from actorwire.adapters.jupyter.replies import ExecutionError
from actorwire.adapters.jupyter.state import KernelDeadError
from actorwire.adapters.keysquare.platform import PlatformError
from actorwire.pipelines import DefinitionError, PipelineError


@pytest.mark.parametrize(
    ("error", "standard"),
    [
        (ActorStartError, RuntimeError),
        (SupervisorEscalation, RuntimeError),
        (PoolExhausted, RuntimeError),
        (MailboxFull, Exception),
        (AuthRefused, Exception),
        (TomlError, ValueError),
        (MessageError, ValueError),
        (SignatureError, ValueError),
        (ReplayError, ValueError),
        (ExecutionError, RuntimeError),
        (KernelDeadError, RuntimeError),
        (PlatformError, Exception),
        (DefinitionError, ValueError),
        (PipelineError, RuntimeError),
    ],
)
def test_each_error_is_an_actorwire_error_of_its_standard_type(
    error: type[BaseException], standard: type[BaseException]
) -> None:
    assert issubclass(error, ActorwireError)
    assert issubclass(error, standard)


def test_the_link_protocol_fault_is_a_message_not_an_exception() -> None:
    from actorwire.actors.link import ProtocolFault

    assert not issubclass(ProtocolFault, BaseException)
