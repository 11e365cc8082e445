import pathlib
import sys

import pytest

# Let a plain `pytest` (not only `python -m pytest`) import fastprod from the checkout
# when it is not pip-installed; pyproject's pytest `pythonpath = ["."]` would do the same.
_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["fastprod.localkafka.pytest_plugin"]


@pytest.fixture(scope="module")
def proxied_kafka():
    """A dedicated one-node Kafka that advertises a FaultProxy's port (tests/proxy.py), so
    every client connection (bootstrap and the leader connection alike) goes through the
    proxy. Yields (LocalKafka, FaultProxy); one broker per module that uses it."""
    from fastprod.localkafka import LocalKafka

    try:
        import proxy as faultproxy
    except ImportError:  # tests/ imported as a package
        from tests import proxy as faultproxy

    listener = faultproxy.listening_socket()
    holder: dict = {}
    proxy = faultproxy.FaultProxy(lambda: ("127.0.0.1", holder["k"].nodes[0].port),
                                  listen=listener)
    try:
        with LocalKafka(nodes=1, broker_config={
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"}) as k:
            holder["k"] = k
            assert {b.port for b in k.metadata([]).brokers} == {proxy.port}
            yield k, proxy
    finally:
        proxy.close()
