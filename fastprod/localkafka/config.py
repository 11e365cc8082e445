"""KRaft configuration for local Kafka nodes: server.properties, log4j2.xml, ids and ports."""

from __future__ import annotations

import base64
import pathlib
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr


@dataclass
class NodeSpec:
    """Everything that identifies one node; stays fixed across restarts."""

    node_id: int
    port: int  # PLAINTEXT listener clients use
    controller_port: int
    dir: pathlib.Path
    #: Ports of the extra listeners of a secured node (listener name -> port).
    listener_ports: dict[str, int] = field(default_factory=dict)

    @property
    def data_dir(self) -> pathlib.Path:
        return self.dir / "data"

    @property
    def properties_file(self) -> pathlib.Path:
        return self.dir / "server.properties"

    @property
    def log4j_file(self) -> pathlib.Path:
        return self.dir / "log4j2.xml"

    @property
    def server_log(self) -> pathlib.Path:
        return self.dir / "server.log"

    @property
    def stdout_log(self) -> pathlib.Path:
        return self.dir / "stdout.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def new_cluster_id() -> str:
    """A random Kafka Uuid string (URL-safe base64, no padding), as StorageTool makes them.

    Like Kafka's Uuid.randomUuid, avoid ids starting with '-' so they never look like a flag.
    """
    while True:
        s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not s.startswith("-"):
            return s


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound at once, so they differ, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def server_properties(
    node: NodeSpec,
    voters: list[NodeSpec],
    *,
    num_partitions: int = 1,
    auto_create_topics: bool = True,
    overrides: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """The broker+controller config of one node, as an ordered dict of strings."""
    n = len(voters)
    rf = min(n, 3)
    props: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        # A static quorum keeps formatting a one-liner per node (no --initial-controllers).
        "controller.quorum.voters": ",".join(
            f"{v.node_id}@127.0.0.1:{v.controller_port}" for v in voters
        ),
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": node.data_dir,
        "num.partitions": num_partitions,
        "auto.create.topics.enable": str(auto_create_topics).lower(),
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": 2 if rf >= 3 else 1,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": 2 if rf >= 3 else 1,
        # The internal topics are created on first use (first consumer group, first
        # transactional producer); 50 partitions each makes that first use take seconds.
        "offsets.topic.num.partitions": 5,
        "transaction.state.log.num.partitions": 5,
        "group.initial.rebalance.delay.ms": 0,
        # The broker session bounds both how soon a SIGKILLed node is fenced (leaders
        # move) and how soon a restarted node may re-register (the controller answers
        # DUPLICATE_BROKER_REGISTRATION until the old session expires, even after a clean
        # stop). Kafka's 9 s would make every failover/restart test wait that long; 3 s
        # with 6 heartbeats in it still leaves slack for a busy 2-core machine.
        "broker.heartbeat.interval.ms": 500,
        "broker.session.timeout.ms": 3000,
        # A fresh voter waits one election timeout (1 s + jitter by default) before it
        # campaigns; shorter gets a 3-node quorum up sooner. Fetch timeout stays 2 s.
        "controller.quorum.election.timeout.ms": 300,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
        "log.cleaner.threads": 1,
        "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
    }
    props.update(overrides or {})
    return {k: str(v) for k, v in props.items()}


def render_properties(props: Mapping[str, str]) -> str:
    lines = ["# written by fastprod.localkafka"]
    for k, v in props.items():
        # java.util.Properties: backslash is the only character that needs escaping here.
        lines.append(f"{k}={v.replace(chr(92), chr(92) * 2)}")
    return "\n".join(lines) + "\n"


def log4j2_xml(log_file: pathlib.Path, level: str = "INFO") -> str:
    """Everything to one file in the node dir; the noisy request logger stays at WARN."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName={quoteattr(str(log_file))} append="true" immediateFlush="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="{level}"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


def tool_log4j2_xml() -> str:
    """Java tools (StorageTool, TopicCommand, console consumer): warnings to stderr only."""
    return """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="%p %m (%c)%n"/></Console>
  </Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="stderr"/></Root></Loggers>
</Configuration>
"""
