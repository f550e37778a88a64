"""Tasks: what each model family brings to the one training loop.

`TASKS` maps a config's `task` field to its `Task` class. A new model family
adds its module here (see README, "Adding a model").
"""

from trainers.tasks.air import AirTask
from trainers.tasks.dm_vae import DmVaeTask
from trainers.tasks.draw import DrawTask
from trainers.tasks.painter import PainterTask
from trainers.tasks.stawm import StawmTask
from trainers.tasks.ws_ram import WsRamTask

TASKS = {cls.name: cls for cls in (PainterTask, StawmTask, DrawTask, AirTask, DmVaeTask,
                                    WsRamTask)}


def get_task(config):
    """The `Task` a config names (`config.task`), built on that config."""
    if config.task not in TASKS:
        raise ValueError(
            f"Unknown task {config.task!r} in config {config.name!r}; "
            f"known tasks: {', '.join(sorted(TASKS))}."
        )
    return TASKS[config.task](config)
