"""Fixtures of the engine tests: a real redis-server for the shared chunk store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.redis_server import REDIS_SERVER, RedisServer


@pytest.fixture()
def redis_server(tmp_path):
    """A redis-server of this test's own on a free loopback port, killed afterwards."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed (scripts/test.sh installs Debian's package)")
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()
