"""Delivery beside firing (SPEC §14): a deliverer killed mid-batch loses nothing, two deliverers
on PostgreSQL never send one delivery twice (but after a lease expiry, with the same id), a
slow receiver never delays the sweep, and a catch-up of 1,000 cases delivers every routed
notice, signed."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from duban.commands.daemon import Config, Scheduler
from duban.delivery import store
from duban.delivery.deliverer import Deliverer
from duban.delivery.outbox import Outbox
from duban.delivery.settings import parse
from duban.service.app import App
from duban.storage.database import Database
from duban.storage.tables import DELIVERIES, DELIVERY_ATTEMPTS, NOTICES, TIMERS
from tests.integration.delivery_receivers import http_receiver, smtp_receiver
from tests.integration.delivery_setup import (
    ENV,
    RED_CARD,
    SECRETS,
    events,
    new_app,
    notify,
    notify_section,
    red_card,
    rows,
)
from tests.integration.scheduler_worker import spawn, wait_for


@pytest.fixture(autouse=True)
def quiet_smtp_server() -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)


@pytest.fixture
def app(sqlite_url: str) -> Iterator[App]:
    a = new_app(sqlite_url)
    yield a
    a.db.dispose()


def count(app: App, table: object, *where: object) -> int:
    with app.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def test_kill_9_mid_batch_loses_nothing_and_repeats_keep_their_id(app: App, sqlite_url: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`notify run` killed while its second batch is being sent: the first batch was recorded; the
    killed batch's claims expire and another deliverer sends them again, with the same ids; every
    delivery ends sent exactly once in the audit log."""
    with http_receiver(hold_after=25, now=lambda: int(RED_CARD.timestamp())) as rx, smtp_receiver() as smtp:
        section = notify_section(rx, smtp.port, via=["webhook"])
        red_card(app, parse(section, "office.yaml"), cases=60)
        settings_file = tmp_path / "office.yaml"
        settings_file.write_text(yaml.safe_dump({"notify": section}, allow_unicode=True), encoding="utf-8")
        for k, v in {**ENV, "DUBAN_SETTINGS": str(settings_file)}.items():
            monkeypatch.setenv(k, v)
        victim = spawn(["--db", sqlite_url, "--now", RED_CARD.isoformat(), "notify", "run", "--once", "--node", "victim",
                        "--batch", "20", "--lease", "30"], tmp_path, "victim")
        try:
            wait_for(lambda: rx.arrived > 25 or victim.popen.poll() is not None, what="the victim's 26th send")
            assert victim.popen.poll() is None, victim.stderr
            victim.popen.send_signal(signal.SIGKILL)
            victim.wait(30)
        finally:
            if victim.popen.poll() is None:
                victim.popen.kill()
        rx.release.set()
        assert count(app, DELIVERIES, DELIVERIES.c.status == "sent") == 20  # the first batch, recorded
        held = {d["id"] for d in rows(app, DELIVERIES) if d["claimed_by"] == "victim"}
        assert len(held) == 20
        app.clock.set(RED_CARD + timedelta(seconds=31))  # the victim's lease has run out
        rescuer = Deliverer(app, parse(section, "office.yaml"), SECRETS, "rescuer", draw=lambda: 0.5)
        try:
            assert rescuer.run_once().sent == 40
        finally:
            rescuer.close()
        received = Counter(rx.ids)
    every = {store.uid(d["id"]) for d in rows(app, DELIVERIES)}
    assert set(received) == every and len(every) == 60  # each delivery reached the receiver
    repeats = {i for i, n in received.items() if n > 1}
    # Only what the victim sent and never recorded: the 5 answered, and the 26th, which the receiver
    # read before the kill and took in once released.
    assert len(repeats) == 6 and repeats <= {store.uid(i) for i in held}
    assert all(n <= 2 for n in received.values())
    assert {d["status"] for d in rows(app, DELIVERIES)} == {"sent"}
    assert sorted(e["data"]["delivery_id"] for e in events(app, "notice_sent")) == sorted(d["id"] for d in rows(app, DELIVERIES))


@pytest.mark.postgres
def test_two_deliverers_on_postgres_never_send_one_delivery_twice(pg_url: str) -> None:
    """Two deliverers sweeping the same 120 deliveries at once take disjoint batches (SKIP LOCKED);
    a claim left by a dead deliverer is taken over only after its lease, with the same id."""
    app_a, app_b = new_app(pg_url), None
    try:
        with http_receiver(now=lambda: int(RED_CARD.timestamp())) as rx, smtp_receiver() as smtp:
            settings = notify(rx, smtp.port, via=["webhook"])
            red_card(app_a, settings, cases=120)
            app_b = App(Database(pg_url), app_a.clock, app_a.tz)
            a = Deliverer(app_a, settings, SECRETS, "node-a", batch=7, draw=lambda: 0.5)
            b = Deliverer(app_b, settings, SECRETS, "node-b", batch=7, draw=lambda: 0.5)
            results: dict[str, int] = {}
            threads = [threading.Thread(target=lambda n=n: results.__setitem__(n.node, n.run_once().sent)) for n in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            a.close()
            b.close()
            received = Counter(rx.ids)
            assert sum(results.values()) == 120 and min(results.values()) > 0, results  # both took part
            assert len(received) == 120 and set(received.values()) == {1}
            assert count(app_a, DELIVERY_ATTEMPTS) == 120 and len(events(app_a, "notice_sent")) == 120

            # A dead deliverer's claim: left alone while its lease runs, sent by the other after it.
            red_card(app_a, settings, cases=1)  # one more case: one more 催办通知
            with app_a.db.write() as conn:
                (claimed,) = store.claim(conn, "dead-node", app_a.clock.now(), timedelta(seconds=30), 10)
            survivor = Deliverer(app_b, settings, SECRETS, "node-b", draw=lambda: 0.5)
            assert survivor.run_once().attempts == 0
            app_a.clock.advance(seconds=31)
            assert survivor.run_once().sent == 1
            survivor.close()
            assert rx.ids[-1] == store.uid(claimed.id) and Counter(rx.ids)[store.uid(claimed.id)] == 1
    finally:
        app_a.db.dispose()
        if app_b is not None:
            app_b.db.dispose()


def test_a_slow_receiver_does_not_delay_the_sweep(app: App) -> None:
    """`scheduler run` delivers in its own job and thread: while a receiver hangs on a send, the
    sweep goes on firing timers that fall due."""
    with http_receiver(hold_after=0, now=lambda: int(RED_CARD.timestamp())) as rx, smtp_receiver() as smtp:
        settings = notify(rx, smtp.port, via=["webhook"])
        red_card(app, settings, cases=1)  # one 催办通知 waiting to be delivered
        app.outbox = Outbox(settings)
        app.open_case("supervision", title="后来的事项", lead_unit="区发改局", co_units=[], due="2026-12-31",
                      values={}, actor="wang")
        node = Deliverer(app, settings, SECRETS, "sched", draw=lambda: 0.5)
        runner = Scheduler(app, Config(node="sched", interval=0.05, batch=50, chunk=50, lease=60), node)
        thread = threading.Thread(target=runner.run_forever, daemon=True)
        thread.start()
        try:
            wait_for(lambda: rx.arrived == 1, what="the deliverer to be stuck on the receiver")
            app.clock.advance(days=2)  # the new case's sign-for timer falls due
            wait_for(lambda: count(app, TIMERS, TIMERS.c.case_id == 2, TIMERS.c.status == "fired") == 1, timeout=10,
                     what="the sweep to fire the new case's timer while delivery hangs")
            assert rx.received == []  # the delivery is still waiting on the receiver
        finally:
            rx.release.set()
            wait_for(lambda: len(rx.received) >= 1, what="the delivery to complete")
            runner.stop()
            thread.join(30)
    assert not thread.is_alive()
    assert count(app, DELIVERIES, DELIVERIES.c.status == "sent") >= 1


def test_a_catch_up_of_1000_cases_delivers_every_routed_notice_signed(app: App) -> None:
    """1,000 cases lapse with no scheduler running; one sweep fires their ladders and the
    deliverer sends every routed notice, each verified by the receiver, each id once."""
    with http_receiver(now=lambda: int((RED_CARD + timedelta(days=40)).timestamp())) as rx, smtp_receiver() as smtp:
        settings = parse({**notify_section(rx, smtp.port, via=["webhook"]),
                          "routes": [{"kinds": ["催办通知", "督办通知"], "to": "unit", "via": ["webhook"]},
                                     {"kinds": ["通报"], "to": ["leader"], "via": ["feishu"]}],
                          "feishu": {"url": rx.url("feishu"), "secret_env": "FS", "rate_per_minute": 100000}},
                         "office.yaml")
        app.outbox = Outbox(settings)
        for i in range(1000):
            app.open_case("supervision", title=f"事项{i}", lead_unit="区发改局", co_units=[], due="2026-11-30",
                          values={}, actor="wang")
        app.clock.set(RED_CARD + timedelta(days=40))
        fired = app.tick().fired_timers
        node = Deliverer(app, settings, SECRETS, "catch-up", batch=200, draw=lambda: 0.5)
        try:
            result = node.run_once()
        finally:
            node.close()
        received = list(rx.received)
    with app.db.read() as conn:
        routed = conn.execute(select(NOTICES.c.kind, func.count()).where(NOTICES.c.kind.in_(("催办通知", "督办通知")))
                              .group_by(NOTICES.c.kind)).all()
        bulletins = conn.execute(select(func.count()).select_from(NOTICES).where(
            NOTICES.c.kind == "通报", NOTICES.c.recipient == "leader")).scalar_one()
    expected = sum(n for _, n in routed) + bulletins
    assert fired >= 3000 and expected >= 2000
    assert result.sent == expected and result.failed == 0
    assert len(received) == expected and all(r.verified for r in received)
    assert len({r.delivery_id for r in received}) == expected
    assert {r.path for r in received} == {"/webhook", "/feishu"}
    assert json.loads(received[0].body)  # a JSON body each


def test_a_slow_batch_keeps_its_claims_while_it_sends(app: App) -> None:
    """Sends that take longer than the lease in all (50 s each, a 120 s lease, 6 a batch):
    the claims on what is not sent yet are renewed as the batch goes, so another deliverer
    asking meanwhile takes none of them and nothing is sent twice."""
    with http_receiver(now=lambda: int(RED_CARD.timestamp())) as rx, smtp_receiver() as smtp:
        settings = notify(rx, smtp.port, via=["webhook"])
        red_card(app, settings, cases=6)
        slow = Deliverer(app, settings, SECRETS, "slow", batch=6, lease=120, draw=lambda: 0.5)
        send = slow.senders["webhook"].send
        taken: list[int] = []

        def fifty_seconds(message: object, d: store.Due, now: object) -> object:
            app.clock.advance(seconds=50)
            with app.db.write() as conn:  # another node looks for work while this one sends
                taken.extend(x.id for x in store.claim(conn, "other", app.clock.now(), timedelta(seconds=120), 10))
            return send(message, d, now)  # type: ignore[arg-type]

        slow.senders["webhook"].send = fifty_seconds  # type: ignore[method-assign]
        try:
            assert slow.run_once().sent == 6
        finally:
            slow.close()
        received = Counter(rx.ids)
    assert taken == []  # 300 s of sends: without renewal the last three were free after 120 s
    assert len(received) == 6 and set(received.values()) == {1}
