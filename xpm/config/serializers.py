"""Init tasks that load saved state into a configuration's object, in the job process.

A model trained by one task and saved (its weights in a folder) is used by another
task through a loader run before it::

    class LoadWeights(PathSerializationLWTask):
        def execute(self):
            self.value.load_state((self.path / "weights.pt").read_bytes())

    Evaluate.C(model=model).submit(init_tasks=[LoadWeights.C(value=model, path=saved)])

In the job process, ``self.value`` of the init task is the very object the task
holds as ``model`` (init tasks and task share the objects of their parameters).
"""

from __future__ import annotations

from xpm.config.base import Config, LightweightTask
from xpm.config.datapath import DataPath
from xpm.config.types import Param

__all__ = ["SerializationLWTask", "PathSerializationLWTask"]


class SerializationLWTask(LightweightTask):
    """An init task that prepares the object of the configuration ``value`` (override ``execute()``)."""

    value: Param[Config]
    """The configuration whose object this task prepares."""

    registered: list[Config]
    """(in the job process) the objects registered as using this saved state (see :meth:`register`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.registered = []

    def register(self, config: Config) -> None:
        """Records an object that uses the saved state."""
        self.registered.append(config)


class PathSerializationLWTask(SerializationLWTask):
    """A :class:`SerializationLWTask` whose saved state is a file or folder, ``path``."""

    path: DataPath
    """The saved state (copied with the configuration by ``xpm.save``/``xpm.serialize``)."""
