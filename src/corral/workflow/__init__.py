"""What a workflow is: its documents read and checked (``reading``,
``documents``), references and conditions, the step graph, the compiler
that turns a spec into a :class:`~corral.workflow.plan.Plan`, the loader
and the Python builder. Below the engine: nothing here imports
``corral.engine``, ``corral.storage``, the server or the CLI."""
