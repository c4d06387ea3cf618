"""Built-in plugins: ordinary pluggy plugins, registered before all others
(:data:`corral.plugins.manager.BUILTIN_PLUGINS` names them)."""
