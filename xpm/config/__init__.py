"""The configuration API: typed parameters, tags, defaults and generated paths."""

from xpm.config.base import (
    Config,
    ConfigMixin,
    Identifier,
    LightweightTask,
    Prepare,
    ResumableTask,
    Task,
)
from xpm.config.fields import PathGenerator, field, tag
from xpm.config.operations import copyconfig, stop_tags, tagspath
from xpm.config.types import Constant, Meta, Option, Param

__all__ = [
    "Config",
    "ConfigMixin",
    "Constant",
    "Identifier",
    "LightweightTask",
    "Meta",
    "Option",
    "Param",
    "PathGenerator",
    "Prepare",
    "ResumableTask",
    "Task",
    "copyconfig",
    "field",
    "stop_tags",
    "tag",
    "tagspath",
]
