"""Figures the workers keep for the managers' /metrics: how long each node's jobs take.

A job runs in a worker process, which no manager scrapes; jobs are few (a task's start
or stop), so each one adds to counters in Redis, one hash of histogram buckets, and any
manager reads them at scrape time. High-rate figures (the mesh's) never come here.
"""

from __future__ import annotations

from swarmpy.store.base import StoreBase

# seconds: a start that only runs a container takes well under a second; one that first
# copies an image to the node, up to minutes
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class MetricRecords(StoreBase):
    """Keys: metrics:jobs (hash "<node id> <job> <bucket>" -> count; bucket an upper bound,
    "+Inf", or "sum" in seconds)."""

    def observe_job(self, node_id: str, job: str, seconds: float) -> None:
        key = self.key("metrics", "jobs")
        p = self.pipeline(transaction=False)
        for bound in JOB_BUCKETS:
            if seconds <= bound:
                p.hincrby(key, f"{node_id} {job} {bound}", 1)
        p.hincrby(key, f"{node_id} {job} +Inf", 1)
        p.hincrbyfloat(key, f"{node_id} {job} sum", seconds)
        p.execute()

    def job_durations(self) -> dict[tuple[str, str], dict[str, float]]:
        """(node id, job) -> {bucket: count, ..., "+Inf": count, "sum": seconds}."""
        out: dict[tuple[str, str], dict[str, float]] = {}
        for field, value in self.redis.hgetall(self.key("metrics", "jobs")).items():
            node_id, job, bucket = field.split(" ")
            out.setdefault((node_id, job), {})[bucket] = float(value)
        return out

    def node_of_queue(self, queue: str) -> str | None:
        """The node whose jobs `queue` holds (see `queue_name`); None for another queue."""
        prefix = self.queue_name("")
        return queue[len(prefix):] if queue.startswith(prefix) else None
