"""argparse's own texts ("usage:", "options", its error messages) in the user's language.

The standard library ships no translations for argparse, so its messages are part of m3daemon's
catalogue (listed here for extraction) and argparse is pointed at m3daemon's ``_``/``ngettext``.
"""

from __future__ import annotations

import argparse

from m3daemon.i18n import _, _l, ngettext

ARGPARSE_TEXTS = (
    _l("usage: "),
    _l("options"),
    _l("positional arguments"),
    _l("show this help message and exit"),
    _l("%(prog)s: error: %(message)s\n"),
    _l("argument %(argument_name)s: %(message)s"),
    _l("the following arguments are required: %s"),
    _l("unrecognized arguments: %s"),
    _l("invalid choice: %(value)r (choose from %(choices)s)"),
    _l("invalid %(type)s value: %(value)r"),
    _l("ambiguous option: %(option)s could match %(matches)s"),
    _l("not allowed with argument %s"),
    _l("one of the arguments %s is required"),
    _l("expected one argument"),
    _l("expected at least one argument"),
    _l("expected at most one argument"),
    _l("ignored explicit argument %r"),
    _l("can't open '%(filename)s': %(error)s"),
)


def _plural_marks() -> None:  # never called: marks argparse's plural messages for extraction
    ngettext("expected %s argument", "expected %s arguments", 1)


def install() -> None:
    argparse._ = _  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]
