"""Resume tasks a crashed process left running, so accepted work is not lost.

A task found ``submitted`` or ``working`` at start-up was cut off mid-run. Skills are replayed
from the task history (see ``protocols.a2a_executor``), so re-delivering the task's last user
message (same message id: the history does not grow) runs it again to its end. A task that keeps
killing the process is failed after ``max_attempts`` instead of looping forever.
"""

from __future__ import annotations

import logging

from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types import Role, SendMessageConfiguration, SendMessageRequest, TaskState

from protocols.a2a_parts import agent_message
from protocols.sqlite_task_store import SqliteTaskStore

__all__ = ["resume_interrupted_tasks"]

log = logging.getLogger("agents.a2a")
RECOVERY_KEY = "meshRecoveries"


class _Owner(User):
    """The stored owner of a task, so the store's per-owner scoping finds it again."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def is_authenticated(self) -> bool:
        return bool(self._name)

    @property
    def user_name(self) -> str:
        return self._name


async def resume_interrupted_tasks(
    store: SqliteTaskStore, handler: DefaultRequestHandler, max_attempts: int = 3
) -> list[str]:
    """Restart every interrupted task; returns the ids resumed."""
    resumed = []
    for task_id, owner in await store.interrupted():
        context = ServerCallContext(user=_Owner(owner or ""))
        task = await store.get(task_id, context)
        if task is None:
            continue
        user_messages = [m for m in task.history if m.role == Role.ROLE_USER]
        attempts = int(task.metadata[RECOVERY_KEY]) if RECOVERY_KEY in task.metadata else 0
        if not user_messages or attempts >= max_attempts:
            task.status.state = TaskState.TASK_STATE_FAILED
            task.status.message.CopyFrom(
                agent_message(
                    f"interrupted {attempts} times by a process crash; not resumed again",
                    context_id=task.context_id,
                    task_id=task.id,
                )
            )
            await store.save(task, context)
            log.warning("task %s failed: interrupted %d times", task_id, attempts)
            continue
        task.metadata[RECOVERY_KEY] = attempts + 1
        await store.save(task, context)
        request = SendMessageRequest(
            message=user_messages[-1], configuration=SendMessageConfiguration(return_immediately=True)
        )
        await handler.on_message_send(request, context)
        resumed.append(task_id)
        log.info("resumed task %s interrupted by a restart (attempt %d)", task_id, attempts + 1)
    return resumed
