"""Built-in plugin ``vibe`` (issue 15, being built): every analysis of a
codebase in parallel, one ranked plan, safe fixes proven by tests.

- :mod:`.tools`: the analysers (ruff, radon, bandit, deptry, vulture) run
  as real tools at pinned versions, and their output as findings of one
  shape.

Not yet built: discovery of subprojects and their stack, the workflow (one
step per analysis per subproject, joined by a ``trigger: done`` step), the
ranked plan and score, ``corral vibe`` itself, ``--fix``, the reports.
"""
