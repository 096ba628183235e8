"""Progress of an ingest stage on stderr: a live bar on a terminal from the stage's first moment,
or one plain line when it ends, so a log file still says what happened.
"""

from __future__ import annotations

import sys
import time

class _Progress:
    """Progress of one stage on stderr.

    ``enabled`` True: a live bar (tqdm) from the stage's first moment; False: nothing; None:
    the bar when stderr is a terminal, else one plain line when the stage ends
    (``ingest: <stage> done in S s: <note>``), so a log file still says what happened."""

    def __init__(self, total: int | None, desc: str, enabled: bool | None, unit: str = "blk"):
        tty = sys.stderr.isatty()
        self.mode = ("bar" if tty else "lines") if enabled is None else ("bar" if enabled else "off")
        self.enabled = self.mode == "bar"
        self.desc = desc
        self.t0 = time.monotonic()
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True)
            self.bar.refresh()  # shown at once, before the first unit of work is done

    def update(self, n: int, **post) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if post:
                self.bar.set_postfix(post, refresh=False)

    def close(self, note: str = "") -> None:
        """End the stage; ``note`` (counts) goes on its plain line."""
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            self.bar.close()
            self.bar = None
        elif self.mode == "lines":
            seconds = time.monotonic() - self.t0
            print(f"ingest: {self.desc} done in {seconds:.1f} s{': ' + note if note else ''}", file=sys.stderr,
                  flush=True)
            self.mode = "off"

    def end(self) -> None:
        """Leave the stage without a "done" line (it failed or was interrupted)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.mode = "off"
