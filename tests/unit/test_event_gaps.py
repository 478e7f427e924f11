"""Missed events: stream ids compare as numbers, the store tells when the stream lost entries a
reader had not read (trimmed past it, or older than it after a failover), and a control loop
then makes a full pass and reads on from where the stream is."""

from __future__ import annotations

from swarmpy.manager.component import Component
from swarmpy.store.base import StoreBase, stream_id


class Stream:
    """A Redis connection holding one events stream (its entry ids, oldest first): what
    `events_missed` reads of it."""

    def __init__(self, ids: list[str]):
        self.ids = ids

    def register_script(self, script):
        return None

    def pipeline(self, transaction=True):
        return StreamPipeline(self.ids)


class StreamPipeline:
    def __init__(self, ids):
        self.ids, self.answers = ids, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def xrange(self, key, min="-", max="+", count=None):
        self.answers.append([(i, {}) for i in self.ids[:count]])

    def xrevrange(self, key, max="+", min="-", count=None):
        self.answers.append([(i, {}) for i in self.ids[::-1][:count]])

    def execute(self):
        return self.answers


def missed(ids: list[str], cursor: str) -> str | None:
    return StoreBase(Stream(ids)).events_missed(cursor)


def test_stream_ids_compare_as_numbers_not_strings():
    assert stream_id("9-0") < stream_id("10-0")
    assert stream_id("10-2") < stream_id("10-10")
    assert stream_id("1700000000000-5") == (1700000000000, 5)
    assert stream_id("0-0") < stream_id("0-1")
    assert stream_id("12") == (12, 0)


def test_a_reader_within_the_stream_missed_nothing():
    assert missed(["5-0", "9-0", "10-0"], "10-0") is None
    assert missed(["5-0", "9-0", "10-0"], "9-0") is None
    assert missed(["5-0", "9-0", "10-0"], "5-0") is None
    assert missed([], "0-0") is None  # an empty stream read from the start
    assert missed(["5-0"], "0-0") is None  # a reader that started on an empty stream


def test_a_stream_trimmed_past_the_cursor_lost_events():
    assert missed(["50-0", "90-0", "100-0"], "9-0") == "100-0"  # "9-0" > "50-0" as strings


def test_a_stream_behind_the_cursor_went_back_in_time():
    # a failover to a replica that lacked the newest entries: read on from its last one
    assert missed(["5-0", "9-0"], "10-0") == "9-0"
    assert missed(["5-0", "9-3"], "9-10") == "9-3"
    assert missed([], "10-0") == "0-0"  # a stream that is gone


class LoopStore:
    """The store a control loop reads: the events stream's cursor, gap checks and reads."""

    def __init__(self, gaps: list[str | None], fail_read: int | None = None, away_at_start: int = 0):
        self.gaps, self.fail_read, self.away_at_start = gaps, fail_read, away_at_start
        self.reads: list[str] = []
        self.loop: Component | None = None

    def last_event_id(self) -> str:
        if self.away_at_start:
            self.away_at_start -= 1
            raise ConnectionError("store away")
        return "5-0"

    def events_missed(self, after: str) -> str | None:
        return self.gaps.pop(0) if self.gaps else None

    def read_events(self, after: str, block_ms=None) -> list:
        self.reads.append(after)
        if len(self.reads) == self.fail_read:
            raise ConnectionError("store away")
        if len(self.reads) >= 4:
            self.loop.stop(wait=False)
        return []


class Loop(Component):
    gap_check_every = 0.0  # a check on every turn
    full_pass_every = 3600.0  # none but those the gaps and failures call for

    def __init__(self, store):
        super().__init__(store)
        store.loop = self
        self.passes = 0

    def reconcile_all(self) -> None:
        self.passes += 1


def test_a_loop_makes_a_full_pass_when_the_stream_lost_events_and_reads_on_from_its_end():
    store = LoopStore([None, None, "3-0", None])
    loop = Loop(store)
    loop.run()
    assert loop.passes == 2  # at start, and after the gap
    assert store.reads == ["5-0", "5-0", "3-0", "3-0"]


def test_a_loop_makes_a_full_pass_after_a_failed_turn():
    store = LoopStore([], fail_read=2)
    loop = Loop(store)
    loop.run()
    assert loop.passes == 2  # at start, and after the failed read
    assert store.reads == ["5-0", "5-0", "5-0", "5-0"]


def test_a_store_away_when_the_loop_starts_does_not_end_it():
    store = LoopStore([], away_at_start=1)
    loop = Loop(store)
    loop.run()
    assert loop.passes == 1 and store.reads == ["5-0"] * 4  # it started once the store answered
