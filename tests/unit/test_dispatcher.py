"""The dispatcher's safety net between full passes: it reads only the tasks it sent a job for
that have not settled, sends again a job that was lost, and forgets the tasks that settled."""

from __future__ import annotations

import time

from rq.job import JobStatus

from swarmpy.manager.dispatcher import CHECK_EVERY, STUCK_AFTER, Dispatcher, job_id
from swarmpy.model import DesiredState, Task, TaskState

LONG_AGO = time.time() - 10 * STUCK_AFTER


def task(id: str, state=TaskState.ASSIGNED, desired=DesiredState.RUNNING, updated_at=LONG_AGO, **kw) -> Task:
    return Task(id=id, service_id="s", service_name="web", spec_version=1, slot=1, node_id="n1",
                desired_state=desired, state=state, updated_at=updated_at, **kw)


class Store:
    """The tasks and dispatch set a dispatcher reads; reading every task is counted."""

    def __init__(self, tasks: list[Task], due: list[str] = (), waiting: set[str] = frozenset()):
        self.tasks = {t.id: t for t in tasks}
        self.due, self.waiting = list(due), set(waiting)
        self.read: list[set[str]] = []
        self.full_reads = 0

    def get_tasks(self, ids):
        ids = set(ids)
        self.read.append(ids)
        return [self.tasks[i] for i in ids if i in self.tasks]

    def task_ids(self):
        self.full_reads += 1
        return list(self.tasks)

    def dispatch_pending(self, ids):
        return self.waiting & set(ids)

    def is_alive(self, kind, name):
        return name == "live-worker"

    def take_container_removals(self):
        return []

    def due_dispatch(self, now):
        due, self.due = self.due, []
        return due

    def next_dispatch_time(self):
        return None


class Queues:
    """rq as the dispatcher sees it: the status of each job, and what it enqueues."""

    def __init__(self, statuses: dict[str, tuple[str | None, str | None]] = None):
        self.statuses = statuses or {}
        self.sent: list[str] = []

    def job_status(self, jid):
        return self.statuses.get(jid, (None, None))

    def enqueue(self, jobs):
        self.sent += [jid for _, _, _, jid in jobs]


def test_the_check_resends_a_lost_job_and_forgets_settled_tasks_without_reading_every_task():
    store = Store([
        task("lost"),  # assigned long ago, its start job gone
        task("queued", state=TaskState.PREPARING),  # its job waits for a worker
        task("working", state=TaskState.STARTING),  # a live worker has its job
        task("fresh", updated_at=time.time()),  # not stuck yet
        task("stopping", state=TaskState.RUNNING, desired=DesiredState.SHUTDOWN),  # its stop job gone
        task("running", state=TaskState.RUNNING),
        task("failed", state=TaskState.FAILED),
        task("stopped", state=TaskState.SHUTDOWN, desired=DesiredState.SHUTDOWN),
    ])
    queues = Queues({job_id("start", "queued"): (JobStatus.QUEUED, None),
                     job_id("start", "working"): (JobStatus.STARTED, "live-worker")})
    dispatcher = Dispatcher(store, queues)
    dispatcher.unsettled = set(store.tasks) | {"deleted"}

    dispatcher.check_unsettled()

    assert store.full_reads == 0
    assert store.read == [set(store.tasks) | {"deleted"}]
    assert sorted(queues.sent) == [job_id("start", "lost"), job_id("stop", "stopping")]
    assert dispatcher.unsettled == {"lost", "queued", "working", "fresh", "stopping"}


def test_a_job_taken_by_a_dead_worker_is_sent_again():
    store = Store([task("t", state=TaskState.STARTING)])
    queues = Queues({job_id("start", "t"): (JobStatus.STARTED, "dead-worker")})
    dispatcher = Dispatcher(store, queues)
    dispatcher.unsettled = {"t"}
    dispatcher.check_unsettled()
    assert queues.sent == [job_id("start", "t")]


def test_a_stop_waiting_for_its_grace_period_is_not_sent_and_is_watched_once_sent():
    store = Store([task("t", state=TaskState.RUNNING, desired=DesiredState.SHUTDOWN)], waiting={"t"})
    queues = Queues()
    dispatcher = Dispatcher(store, queues)
    dispatcher.unsettled = {"t"}
    dispatcher.check_unsettled()
    assert queues.sent == [] and dispatcher.unsettled == set()
    store.waiting, store.due = set(), ["t"]
    dispatcher.dispatch_due()
    assert queues.sent == [job_id("stop", "t")] and dispatcher.unsettled == {"t"}


def test_the_tasks_sent_a_job_are_watched_until_they_settle():
    store = Store([task("a"), task("b", state=TaskState.RUNNING)], due=["a", "b"])
    queues = Queues()
    dispatcher = Dispatcher(store, queues)
    dispatcher.dispatch_due()
    assert queues.sent == [job_id("start", "a")]
    assert dispatcher.unsettled == {"a"}

    store.tasks["a"] = task("a", state=TaskState.RUNNING)  # its job ran
    dispatcher.on_tick(time.time() + CHECK_EVERY)
    assert store.read[-1] == {"a"} and dispatcher.unsettled == set()
    assert store.full_reads == 0


def test_the_full_pass_reads_every_task_and_watches_those_not_settled():
    store = Store([task("a", updated_at=time.time()), task("b", state=TaskState.RUNNING),
                   task("c", state=TaskState.COMPLETE)])
    dispatcher = Dispatcher(store, Queues())
    dispatcher.unsettled = {"c", "gone"}
    dispatcher.reconcile_all()
    assert store.full_reads == 1
    assert dispatcher.unsettled == {"a"}
    assert store.read == [{"a", "b", "c"}]  # in batches of `pass_batch`
    dispatcher.on_tick(time.time())  # the full pass was a check: none again at once
    assert store.read == [{"a", "b", "c"}]
