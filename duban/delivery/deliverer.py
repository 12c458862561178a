"""The deliverer: claims due deliveries, sends them, records every attempt (SPEC §14).

Run by `duban notify run [--once]` and, beside the sweep, by `duban scheduler run` (its
own APScheduler job and thread, so a slow receiver never delays a firing). A pass
(`run_once`) repeats until nothing is due: claim a batch (one short transaction), send
each delivery with no transaction open (renewing the batch's claims whenever half the
lease has gone by), record the batch (one transaction). A failed
attempt is retried after an exponential back-off with jitter (`Retry.delay`; the draw comes
from an injected random source, so tests are deterministic) until the last attempt, then
the delivery is `failed`. A channel with a rate limit (the robots: 20 a minute) spends
tokens from a bucket on the app's clock; a delivery with none left waits (no attempt is
counted) until the bucket has one again.

At least once: a deliverer killed between sending and recording leaves its claims; once
their lease runs out (or when it restarts under the same node name) they are sent again,
with the same id (`store.uid`), which the receiver uses to drop the repeat.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from duban.delivery import channels as ch
from duban.delivery import store
from duban.delivery.messages import compose
from duban.delivery.settings import NotifySettings
from duban.logconfig import get_logger
from duban.service.app import App
from duban.storage.tables import DELIVERY_ATTEMPTS

log = get_logger("duban.delivery")

DEFAULT_BATCH = 50
DEFAULT_LEASE = 120.0  # seconds; renewed while a batch is sent (`Deliverer._renewed`)


class TokenBucket:
    """`rate` tokens a minute, at most `rate` saved up, refilled by the clock it is asked with."""

    def __init__(self, rate: int, now: datetime, used: int = 0) -> None:
        self.rate = rate
        self.tokens = float(max(0, rate - used))
        self.at = now

    def _refill(self, now: datetime) -> None:
        if now > self.at:
            self.tokens = min(float(self.rate), self.tokens + (now - self.at).total_seconds() * self.rate / 60)
            self.at = now

    def take(self, now: datetime) -> bool:
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def next_token_at(self, now: datetime) -> datetime:
        self._refill(now)
        return now + timedelta(seconds=max(1.0, (1 - self.tokens) * 60 / self.rate))  # ≥ 1 s: never due again at once


@dataclass
class PassResult:
    """What one pass did."""

    node: str
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0
    attempts: int = 0
    seconds: float = 0.0
    stopped: bool = False
    lines: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "sent": self.sent, "retrying": self.retrying, "failed": self.failed,
                "deferred": self.deferred, "attempts": self.attempts, "seconds": round(self.seconds, 3),
                "stopped": self.stopped, "lines": self.lines}


class Deliverer:
    """One deliverer node."""

    def __init__(self, app: App, settings: NotifySettings, secrets: Mapping[str, Mapping[str, str]], node: str,
                 *, batch: int = DEFAULT_BATCH, lease: float = DEFAULT_LEASE,
                 draw: Callable[[], float] = random.random, max_batches: int = 100_000) -> None:
        self.app = app
        self.settings = settings
        self.node = node
        self.batch = batch
        self.lease = timedelta(seconds=lease)
        self.draw = draw  # the back-off jitter: [0, 1)
        self.max_batches = max_batches  # a bound on one pass, whatever happens
        self._stop = threading.Event()
        ca_files = [str(c.options["ca_file"]) for c in settings.channels.values() if c.options.get("ca_file")]
        self.client = ch.http_client(ca_files)
        self.senders = {name: ch.build(c, secrets.get(name, {}), self.client) for name, c in settings.channels.items()}
        self.buckets: dict[str, TokenBucket] = {}
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        """Give back claims an earlier run under this node name left, and count what each
        rate-limited channel sent in the last minute (so a restart does not exceed the limit)."""
        if self._started:
            return
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            recovered = store.release(conn, self.node)
        with self.app.db.read() as conn:
            for name, c in self.settings.channels.items():
                if c.rate_per_minute:
                    used = conn.execute(select(func.count()).select_from(DELIVERY_ATTEMPTS).where(
                        DELIVERY_ATTEMPTS.c.channel == name, DELIVERY_ATTEMPTS.c.at > now - timedelta(minutes=1),
                    )).scalar_one()
                    self.buckets[name] = TokenBucket(c.rate_per_minute, now, int(used))
        self._started = True
        log.info("deliverer.started", node=self.node, channels=sorted(self.senders), recovered_claims=recovered)

    def close(self) -> None:
        for sender in self.senders.values():
            sender.close()
        self.client.close()
        if self._started:
            with self.app.db.write() as conn:
                store.release(conn, self.node)

    # -- a pass ------------------------------------------------------------------------
    def run_once(self, keep_lines: bool = False) -> PassResult:
        """Send everything due now, batch by batch, until nothing is due (or a stop)."""
        self.start()
        started = time.perf_counter()
        result = PassResult(self.node)
        for _ in range(self.max_batches):
            if self._stop.is_set():
                break
            claimed_at = self.app.clock.now()
            with self.app.db.write() as conn:
                claimed = store.claim(conn, self.node, claimed_at, self.lease, self.batch)
            if not claimed:
                break
            results = []
            for d in claimed:
                claimed_at = self._renewed(claimed, claimed_at)
                results.append(self._attempt(d))
            with self.app.db.write() as conn:
                finals = store.record(conn, self.node, results)
            self._count(results, finals, result, keep_lines)
        for sender in self.senders.values():
            sender.close()  # an SMTP session is not kept idle between passes (servers drop it anyway)
        result.stopped = self._stop.is_set()
        result.seconds = time.perf_counter() - started
        if result.attempts or result.deferred:
            log.info("delivery.pass", node=self.node, sent=result.sent, retrying=result.retrying,
                     failed=result.failed, deferred=result.deferred, attempts=result.attempts,
                     seconds=round(result.seconds, 3))
        return result

    def _renewed(self, batch: list[store.Due], since: datetime) -> datetime:
        """Renew the claims on the whole batch — what is sent but not yet recorded as well as
        what is still to send — once half the lease has gone by since `since` (slow receivers:
        a batch of 50 at a 10 s timeout may take longer than the lease): the instant the lease
        now runs from."""
        now = self.app.clock.now()
        if now - since < self.lease / 2:
            return since
        with self.app.db.write() as conn:
            store.extend(conn, self.node, [d.id for d in batch], now + self.lease)
        return now

    def _attempt(self, d: store.Due) -> store.Result:
        now = self.app.clock.now()
        bucket = self.buckets.get(d.channel)
        if bucket is not None and not bucket.take(now):
            return store.Result(d, now, False, deferred=True, status=store.PENDING, next_at=bucket.next_token_at(now))
        sender = self.senders.get(d.channel)
        if sender is None:  # a channel removed from the settings since the delivery was written
            return self._outcome(d, now, ch.Sent(False, None, f"channel {d.channel} is not configured"), 0, final=True)
        message = compose(d, now, self.app.tz, self.settings.office, self.settings.case_url(d.case_id))
        began = time.perf_counter()
        try:
            sent = sender.send(message, d, now)
        except Exception as exc:  # a bug in a channel must not stop the others; the attempt is recorded
            sent = ch.Sent(False, None, f"{type(exc).__name__}")
        ms = int((time.perf_counter() - began) * 1000)
        return self._outcome(d, now, sent, ms, final=d.channel == "email" and not d.address)

    def _outcome(self, d: store.Due, now: datetime, sent: ch.Sent, ms: int, *, final: bool) -> store.Result:
        attempt = d.attempts + 1
        retry = self.settings.retry
        if sent.ok:
            return store.Result(d, now, True, sent.status_code, None, ms, store.SENT)
        if final or attempt >= retry.attempts:
            return store.Result(d, now, False, sent.status_code, sent.error, ms, store.FAILED)
        wait = timedelta(seconds=retry.delay(attempt, self.draw()))
        return store.Result(d, now, False, sent.status_code, sent.error, ms, store.RETRYING, now + wait)

    def _count(self, results: list[store.Result], finals: list[store.Result], out: PassResult, keep: bool) -> None:
        for r in results:
            if r.deferred:
                out.deferred += 1
                continue
            out.attempts += 1
            if r.status == store.RETRYING:
                out.retrying += 1
                log.info("delivery.retrying", delivery_id=r.due.id, channel=r.due.channel, attempt=r.due.attempts + 1,
                         error=r.error, status_code=r.status_code, next_at=r.next_at.isoformat() if r.next_at else None)
        for r in finals:
            if r.status == store.SENT:
                out.sent += 1
            else:
                out.failed += 1
                log.warning("delivery.failed", delivery_id=r.due.id, case_id=r.due.case_id, channel=r.due.channel,
                            recipient=r.due.recipient, attempts=r.due.attempts + 1, error=r.error)
            if keep:
                out.lines.append(store.final_event(r).note)

    # -- forever -----------------------------------------------------------------------
    def run_forever(self, interval: float) -> None:
        """A pass now and then every `interval` seconds until stopped (`duban notify run`)."""
        try:
            while not self._stop.is_set():
                self.job()
                self._stop.wait(interval)
        finally:
            self.close()

    def job(self) -> None:
        """One pass that never raises (the scheduler's APScheduler job, or the loop above)."""
        try:
            self.run_once()
        except Exception as exc:  # e.g. the database is down: the next pass retries
            log.error("delivery.pass_failed", node=self.node, reason=str(exc), error=type(exc).__name__)
