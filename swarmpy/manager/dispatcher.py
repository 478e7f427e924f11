"""The dispatcher (leader): hands task actions to the workers.

The scheduler and the orchestrator put tasks that need an action in the
store's dispatch set (scored by the time the action may start: a restart
delay keeps a task waiting there). The dispatcher enqueues one rq job per
task action on the node's own queue, with a job id derived from the task and
the action, so that enqueuing twice is harmless. Every few seconds it also
looks for tasks whose job was lost (a worker killed mid-job) and sends them
again: every job is idempotent. It looks only at the tasks it sent a job for
that have not settled yet; a full pass over every task (at start, then every
minute) finds any other.
"""

from __future__ import annotations

import logging
import time

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from swarmpy.manager.component import Component
from swarmpy.manager.metrics import DISPATCH
from swarmpy.model import DesiredState, Task, TaskState

log = logging.getLogger(__name__)

JOB_TIMEOUT = 600  # seconds; a first image transfer to a slow node can take a while
RESULT_TTL = 300
FAILURE_TTL = 3600
STUCK_AFTER = 5.0  # seconds a task may wait in a non-final worker state before its job is checked
CHECK_EVERY = 5.0  # seconds between looks at the unsettled tasks for lost jobs

_START = "swarmpy.worker.jobs.start_task"
_STOP = "swarmpy.worker.jobs.stop_task"
_REMOVE = "swarmpy.worker.jobs.remove_container"
_IN_PROGRESS = (TaskState.ASSIGNED, TaskState.PREPARING, TaskState.STARTING)


class JobQueues:
    """rq queues of the nodes (jobs are JSON, never pickles from Redis)."""

    def __init__(self, store, redis_url: str | None = None, connection: redis.Redis | None = None):
        self.store = store
        self.connection = connection or redis.Redis.from_url(redis_url)

    def queue(self, name: str) -> Queue:
        return Queue(name, connection=self.connection, serializer=JSONSerializer)

    def job_status(self, job_id: str) -> tuple[str | None, str | None]:
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None, None
        return job.get_status(refresh=False), job.worker_name

    def enqueue(self, jobs: list[tuple[str, str, tuple, str]]) -> None:
        """Enqueue (node id, function, args, job id) tuples in one round trip; a job
        of the same id that is still around is replaced."""
        if not jobs:
            return
        with self.connection.pipeline(transaction=False) as p:
            for _, _, _, jid in jobs:
                p.exists(Job.key_for(jid))
            present = p.execute()
        for (_, _, _, jid), exists in zip(jobs, present):
            if exists:
                try:
                    Job.fetch(jid, connection=self.connection, serializer=JSONSerializer).delete()
                except (NoSuchJobError, ValueError):  # ValueError: rq found one of its executions gone
                    pass  # meanwhile (its worker ended it); enqueuing writes the job anew all the same
        # Interleaved by node and not in a MULTI: Redis hands each push to a waiting worker
        # as it comes, so the idle workers spread over the nodes instead of all taking the
        # queue that was pushed first.
        with self.connection.pipeline(transaction=False) as p:
            for node_id, func, args, jid in interleaved(jobs):
                self.queue(self.store.queue_name(node_id)).enqueue_call(
                    func, args=args, job_id=jid, timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL,
                    failure_ttl=FAILURE_TTL, pipeline=p)
            p.execute()

    def enqueue_call(self, queue: str, func: str, args: tuple) -> None:
        """A one-off job on a queue (a node's logs, an exec), not tied to a task."""
        self.queue(queue).enqueue_call(func, args=args, timeout=24 * 3600, result_ttl=60, failure_ttl=600)

    def call(self, func: str, args: tuple, timeout: float, queue: str | None = None):
        """Run a job on any worker and wait for its result (node add's probe)."""
        job = self.queue(queue or self.store.control_queue).enqueue_call(
            func, args=args, timeout=int(timeout) + 5, result_ttl=60, failure_ttl=600)
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = job.get_status(refresh=True)
            if status == JobStatus.FINISHED:
                return job.return_value()
            if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
                result = job.latest_result()
                raise RuntimeError((result.exc_string or "job failed").strip().splitlines()[-1]
                                   if result else "job failed")
            time.sleep(0.05)
        job.cancel()
        raise TimeoutError("no worker answered in time (is `swarmpy worker` running?)")


def interleaved(jobs: list[tuple]) -> list[tuple]:
    """Jobs reordered one node at a time: a1, b1, c1, a2, b2, ... (first field: the node id)."""
    by_node: dict[str, list[tuple]] = {}
    for job in jobs:
        by_node.setdefault(job[0], []).append(job)
    rounds = max((len(v) for v in by_node.values()), default=0)
    return [group[i] for i in range(rounds) for group in by_node.values() if i < len(group)]


def job_id(action: str, task_id: str) -> str:
    return f"{action}-{task_id}"


class Dispatcher(Component):
    name = "dispatcher"
    # The unsettled tasks are checked every CHECK_EVERY seconds: this pass (it reads every task)
    # only finds a stuck task the dispatcher did not send, e.g. one a previous leader sent.
    full_pass_every = 60.0

    def __init__(self, store, queues: JobQueues):
        super().__init__(store)
        self.queues = queues
        self.unsettled: set[str] = set()  # tasks starting or stopping: sent a job here, or found by a full pass
        self.checked_at = 0.0

    def handle(self, events) -> None:
        if any(e.get("kind") == "task" and e.get("action") in ("assign", "desired", "create") for _, e in events) \
                or any(e.get("kind") == "container" for _, e in events):
            self.dispatch_due()

    def on_timer(self, now: float) -> None:
        self.dispatch_due()

    def on_tick(self, now: float) -> None:
        if now - self.checked_at >= CHECK_EVERY:
            self.check_unsettled()

    @DISPATCH.time()
    def dispatch_due(self) -> None:
        now = time.time()
        jobs = [(node_id, _REMOVE, (node_id, container_id), job_id("remove", container_id))
                for node_id, container_id in self.store.take_container_removals()]
        ids = self.store.due_dispatch(now)
        tasks = self.store.get_tasks(ids) if ids else []
        task_jobs = {t.id: job for t in tasks if (job := self.job_for(t))}
        self.unsettled.update(task_jobs)  # before sending: a job lost on the way is found too
        self.queues.enqueue(jobs + list(task_jobs.values()))
        self.wake(self.store.next_dispatch_time())

    @staticmethod
    def job_for(task: Task) -> tuple[str, str, tuple, str] | None:
        if task.node_id is None:
            return None
        if task.desired_state == DesiredState.SHUTDOWN:
            # a dead task is sent here only when its service is gone and its container must go too
            if task.state in _IN_PROGRESS or task.state == TaskState.RUNNING or task.container_id:
                return task.node_id, _STOP, (task.id,), job_id("stop", task.id)
        elif task.state in _IN_PROGRESS:  # assigned, or a start that was cut off half-way
            return task.node_id, _START, (task.id,), job_id("start", task.id)
        return None

    def reconcile_all(self) -> None:
        """The full pass: every task is looked at, and those not settled are watched from now on."""
        self.dispatch_due()
        unsettled = set()
        for batch in self.batches(self.store.task_ids()):
            unsettled |= self.resend_lost(self.store.get_tasks(batch))
        self.unsettled = unsettled

    def check_unsettled(self) -> None:
        """The safety net between full passes: only the tasks not settled yet are read again."""
        self.unsettled = self.resend_lost(self.store.get_tasks(self.unsettled))

    def resend_lost(self, tasks: list[Task]) -> set[str]:
        """Send again the jobs of these tasks that were lost; returns the ids of those not settled
        yet (tasks missing from `tasks`, gone from the store, are settled)."""
        self.checked_at = now = time.time()  # a full pass is a check too
        unsettled = set()
        resend = []
        waiting = self.store.dispatch_pending([t.id for t in tasks if t.desired_state == DesiredState.SHUTDOWN])
        for task in tasks:
            if task.id in waiting:  # its action is due later (a stop's grace period): watched once sent
                continue
            if task.node_id is None or task.state.terminal:
                continue
            stopping = task.desired_state == DesiredState.SHUTDOWN
            if not stopping and task.state not in _IN_PROGRESS:
                continue  # running, as wanted
            unsettled.add(task.id)
            if now - task.updated_at < STUCK_AFTER or task.not_before > now:
                continue
            action = "stop" if stopping else "start"
            status, worker = self.queues.job_status(job_id(action, task.id))
            if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
                continue
            if status == JobStatus.STARTED and worker and self.store.is_alive("worker", worker):
                continue
            resend.append(task)
            log.warning("dispatcher: sending %s again (its %s job is %s, by %s)", task.display_name, action,
                        status or "gone", worker or "no worker")
        self.queues.enqueue([job for job in map(self.job_for, resend) if job])
        return unsettled
