"""The engine wing: admission, runs, resources, strategy, metrics, events."""
