"""Tasks of the Slurm tests (they run in Slurm jobs)."""

from __future__ import annotations

import time
from pathlib import Path

from xpm import Param, ResumableTask


class SlowOnce(ResumableTask):
    """Its first attempt outlives any time limit; the next one finds its checkpoint and ends."""

    __xpmid__ = "test.slowonce"
    seconds: Param[int]

    def execute(self) -> None:
        checkpoint = Path("checkpoint")  # the working directory is the job folder
        if checkpoint.exists():
            print("resumed from the checkpoint")
            return
        checkpoint.write_text("half done")
        time.sleep(self.seconds)


class TimeLeft(ResumableTask):
    """Writes what remaining_time() says, twice (the second from the first answer, without Slurm)."""

    __xpmid__ = "test.timeleft"

    def execute(self) -> None:
        first = self.remaining_time()
        time.sleep(1)
        Path("left").write_text(f"{first} {self.remaining_time()}")
