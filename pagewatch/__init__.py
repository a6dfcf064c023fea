"""pagewatch: watch web pages and prove, with evidence, when a flagged phrase was removed."""

from __future__ import annotations

__version__ = "0.1.0"
