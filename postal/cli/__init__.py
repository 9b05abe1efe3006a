# -*- test-case-name: tests.cli -*-
"""The C{postal} command line: one small module per group of verbs, wired in L{postal.cli.main}."""

__all__: list[str] = []
