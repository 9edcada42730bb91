"""Showing hostile public text inert and legible on a page.

Every post is escaped (autoescape does that). On top of it, control and format characters are
shown as visible marks and combining runs are cut (see ``socialcare.display``).
"""

from __future__ import annotations

from markupsafe import Markup, escape

from socialcare.display import segments


def untrusted(value: object) -> Markup:
    """value as safe HTML: escaped, invisible controls shown, combining runs capped."""
    text = "" if value is None else str(value)
    out: list[str] = []
    for piece, name in segments(text):
        if name is None:
            out.append(str(escape(piece)))
        else:
            out.append(f'<span class="ctl" title="U+{ord(piece):04X}">[{name}]</span>')
    return Markup("".join(out))
