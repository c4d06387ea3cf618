"""corral: an embeddable workflow engine built on Trio's structured concurrency.

::

    import corral, trio

    async def main():
        async with corral.open_engine() as engine:
            result = await engine.run("examples/fanout.yaml", {"n": 3})

    trio.run(main)
"""

from __future__ import annotations

from corral.core.errors import ConfigError as ConfigError
from corral.core.errors import CorralError as CorralError
from corral.core.errors import EngineClosed as EngineClosed
from corral.core.errors import ExecutionNotFound as ExecutionNotFound
from corral.core.errors import HandlerError as HandlerError
from corral.core.errors import InputError as InputError
from corral.core.errors import NonRetryable as NonRetryable
from corral.core.errors import Overloaded as Overloaded
from corral.core.errors import PluginError as PluginError
from corral.core.errors import RetryRefused as RetryRefused
from corral.core.errors import SpecError as SpecError
from corral.core.errors import StepFailure as StepFailure
from corral.core.errors import StepTimedOut as StepTimedOut
from corral.core.errors import StoreError as StoreError
from corral.core.errors import UsageError as UsageError
from corral.core.errors import WorkflowCancelled as WorkflowCancelled
from corral.core.errors import WorkflowFailed as WorkflowFailed
from corral.core.errors import WorkflowTimedOut as WorkflowTimedOut
from corral.core.model import ExecutionRecord as ExecutionRecord
from corral.core.model import Limits as Limits
from corral.core.model import StepRecord as StepRecord
from corral.core.model import StepSpec as StepSpec
from corral.core.model import WorkflowSpec as WorkflowSpec
from corral.core.version import __version__
from corral.engine.engine import Engine as Engine
from corral.engine.events import Subscription as Subscription
from corral.engine.handles import ExecutionHandle as ExecutionHandle
from corral.engine.handles import RetryPreview as RetryPreview
from corral.engine.metrics import MetricsSnapshot as MetricsSnapshot
from corral.engine.opening import open_engine as open_engine
from corral.plugins.builtin.architecture.errors import (
    ArchitectureConfigError as ArchitectureConfigError,
)
from corral.plugins.builtin.core import CommandFailed as CommandFailed
from corral.workflow.builder import Workflow as Workflow
from corral.workflow.loader import load_file as load_file
from corral.workflow.loader import loads as loads
from corral.workflow.plan import Plan as Plan

__all__ = [
    "ArchitectureConfigError",
    "CommandFailed",
    "ConfigError",
    "CorralError",
    "Engine",
    "EngineClosed",
    "ExecutionHandle",
    "ExecutionNotFound",
    "ExecutionRecord",
    "HandlerError",
    "InputError",
    "Limits",
    "MetricsSnapshot",
    "NonRetryable",
    "Overloaded",
    "Plan",
    "PluginError",
    "RetryPreview",
    "RetryRefused",
    "SpecError",
    "StepFailure",
    "StepRecord",
    "StepSpec",
    "StepTimedOut",
    "StoreError",
    "Subscription",
    "UsageError",
    "Workflow",
    "WorkflowCancelled",
    "WorkflowFailed",
    "WorkflowSpec",
    "WorkflowTimedOut",
    "__version__",
    "load_file",
    "loads",
    "open_engine",
]
