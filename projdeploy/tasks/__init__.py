"""Tasks: built-in data that needs no download, user task files, tokenizers, metrics."""

from .base import Split, Task
from .registry import FAMILIES, builtin_task_names, get_task

__all__ = ["Split", "Task", "FAMILIES", "builtin_task_names", "get_task"]
