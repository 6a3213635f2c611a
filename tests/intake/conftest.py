from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callswitch.config import load_config
from callswitch.db.pool import Database
from callswitch.db.wakeup import WorkSignal
from callswitch.intake.app import create_app
from callswitch.routing.reload import RulesHolder

CONFIG = """
http:
  public_url: http://callswitch.test
  max_body_bytes: 4096
database:
  dsn: ${TEST_DSN}
  min_connections: 1
  max_connections: 8
  connect_timeout: 2s
admin:
  token: admin-token-0123456789
intake:
  rate_limits:
    per_ip: {per_ip}
    per_phone: {per_phone}
    per_site: {per_site}
sites:
  shop:
    site_key: pk_test_shop
    api_key: sk_test_shop_0123456789abcdef
    allowed_origins: [https://shop.example]
    thank_you_url: https://shop.example/thanks?from=callback
    phone:
      default_region: US
      allowed_countries: [US, CA, DE]
      own_numbers: ["+13125550000"]
  consent:
    site_key: pk_test_consent
    allowed_origins: [https://consent.example]
    require_consent: true
    max_preferred_days: 7
    phone:
      default_region: DE
"""

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(clean_db: str, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    clients: list[TestClient] = []
    dbs: list[Database] = []
    tasks: list[asyncio.Task[None]] = []

    async def factory(
        per_ip: str = "1000/minute",
        per_phone: str = "3/hour",
        per_site: str = "1000/minute",
        dsn: str | None = None,
        routing: str | None = None,
        work: bool = False,
        phone_per_day: str | None = None,
        site_per_day: str | None = None,
        trusted_proxies: str | None = None,
    ) -> TestClient:
        """``phone_per_day``: intake.phone.max_per_day; ``site_per_day``: intake.max_requests_per_day;
        ``trusted_proxies``: http.trusted_proxies (YAML list). None leaves the key out (its default)."""
        path = tmp_path / f"callswitch-{len(clients)}.yaml"
        text = (
            textwrap.dedent(CONFIG).replace("{per_ip}", per_ip).replace("{per_phone}", per_phone)
            .replace("{per_site}", per_site)
        )
        if phone_per_day is not None:
            text = text.replace("intake:\n", f"intake:\n  phone: {{max_per_day: {phone_per_day}}}\n")
        if site_per_day is not None:
            text = text.replace("intake:\n", f"intake:\n  max_requests_per_day: {site_per_day}\n")
        if trusted_proxies is not None:
            text = text.replace("http:\n", f"http:\n  trusted_proxies: {trusted_proxies}\n")
        path.write_text(text)
        config = load_config(path, env={"TEST_DSN": dsn or clean_db})
        holder = None
        if routing is not None:
            rules_path = tmp_path / f"routing-{len(clients)}.yaml"
            rules_path.write_text(textwrap.dedent(routing))
            holder = RulesHolder(rules_path)
            assert holder.reload(), holder.last_error
        db = Database(config.database)
        with contextlib.suppress(OSError):  # tests of an unreachable database
            await db.connect()
        dbs.append(db)
        signal = WorkSignal(db) if work else None
        if signal is not None:
            tasks.append(asyncio.get_running_loop().create_task(signal.run()))
        client = TestClient(TestServer(create_app(config, db, rules=holder, work=signal)))
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for task in tasks:
        task.cancel()
    for client in clients:
        await client.close()
    for db in dbs:
        await db.close()


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient:
    return await make_client()
