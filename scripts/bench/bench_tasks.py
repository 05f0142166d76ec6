"""Tasks of the run benchmark (imported by the job processes)."""

from xpm import Config, Param, Task


class Inner(Config):
    __xpmid__ = "bench.inner"
    size: Param[int]
    name: Param[str]


class Trivial(Task):
    """Does nothing: what is measured is xpm's cost around it."""

    __xpmid__ = "bench.trivial"
    index: Param[int]
    lr: Param[float]
    label: Param[str]
    inner: Param[Inner]

    def execute(self) -> None:
        pass


class Sleep(Task):
    """Sleeps: a job that holds its Slurm allocation for a while (the Slurm benchmark)."""

    __xpmid__ = "bench.sleep"
    index: Param[int]
    seconds: Param[float]

    def execute(self) -> None:
        import time

        time.sleep(self.seconds)
