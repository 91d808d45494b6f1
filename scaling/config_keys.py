"""One check for every config table: an unknown key is an error naming the closest valid key.

Model, data, trainer and sweep configs all come from hand-written TOML, where a typo must
fail before any compute with a suggestion, not be silently ignored.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence


def check_known_keys(
    keys: Iterable[str],
    known: Sequence[str],
    describe: Callable[[str], str],
    *,
    show: Callable[[str], str] = repr,
    cutoff: float = 0.6,
) -> None:
    """Raise ValueError for the first key not in `known`: `describe(key)` followed by
    "; did you mean <show(closest)>?" or, when nothing is close, the list of valid keys."""
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=cutoff)
            hint = f"; did you mean {show(close[0])}?" if close else f"; valid keys: {', '.join(known)}"
            raise ValueError(f"{describe(key)}{hint}")
