"""Built-in plugin ``restructure``: move modules and packages and rewrite
every reference to them (``corral restructure``). See docs/restructure.md.

- :mod:`.moves`: the plan (``OLD=NEW`` moves) checked against the project's
  modules, as a mapping of every moved module's old name to its new one;
- :mod:`.rewrite`: one file's source rewritten for that mapping (libcst:
  formatting and comments kept outside the changed spans);
- :mod:`.project`: the project's files and what a plan changes in them.
"""
