"""A planted mistake that mypy must report (tests/unit/test_seams.py): a metadata holder
missing one method of ClusterView."""

from fastprod.cluster.snapshot import ClusterSnapshot, Node
from fastprod.engine.seams import ClusterView


class Incomplete:
    snapshot: ClusterSnapshot
    listeners: list = []
    bootstrap_nodes: list[Node] = []

    def add_topic(self, topic: str, now_ms: int) -> None: ...

    def touch(self, topic: str, now_ms: int) -> None: ...

    def request_update(self) -> None: ...

    def close(self) -> None: ...


def view() -> ClusterView:
    return Incomplete()  # no update_leadership
