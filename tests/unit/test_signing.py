"""Signatures as the receivers check them: Standard Webhooks (its published test vector), 钉钉
加签 and 飞书 签名校验; and the back-off and rate limit the deliverer keeps to."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest

from duban.delivery import signing
from duban.delivery.deliverer import TokenBucket
from duban.delivery.settings import Retry

# The Standard Webhooks specification's own example (also used by its reference libraries).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


class TestStandardWebhooks:
    def test_the_published_vector(self) -> None:
        """What any Standard Webhooks library verifies: our signature is the specification's, byte for byte."""
        assert signing.webhook_signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE

    def test_headers_and_verification(self) -> None:
        headers = signing.webhook_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
        assert headers == {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS),
                           "webhook-signature": VECTOR_SIGNATURE}
        assert signing.verify_webhook(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TS + 10)

    @pytest.mark.parametrize("change", ["body", "id", "timestamp", "stale", "secret"])
    def test_any_change_fails_verification(self, change: str) -> None:
        headers = signing.webhook_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
        body, now, secret = VECTOR_BODY, VECTOR_TS, VECTOR_SECRET
        if change == "body":
            body = b'{"test": 2432232315}'
        elif change == "id":
            headers["webhook-id"] = "msg_other"
        elif change == "timestamp":
            headers["webhook-timestamp"] = str(VECTOR_TS + 1)
        elif change == "stale":
            now = VECTOR_TS + 301  # outside the receiver's five-minute tolerance
        else:
            secret = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
        assert not signing.verify_webhook(secret, headers, body, now=now)

    @pytest.mark.parametrize("bad", ["whsec_not base64!", "whsec_c2hvcnQ="])
    def test_a_secret_that_is_not_one_is_refused(self, bad: str) -> None:
        with pytest.raises(ValueError, match="whsec_"):
            signing.webhook_key(bad)


class TestRobots:
    def test_dingtalk_sign_is_the_documented_recipe(self) -> None:
        """HMAC-SHA256 keyed with the secret over "ms-timestamp\\nsecret", base64, URL-encoded, as query parameters."""
        secret, ts = "SEC000example", 1700000000123
        url = signing.dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=abc", secret, ts)
        query = parse_qs(urlsplit(url).query)
        assert query["access_token"] == ["abc"] and query["timestamp"] == [str(ts)]
        expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()
        assert query["sign"] == [expected]
        assert unquote_plus(signing.dingtalk_sign(secret, ts)) == expected
        assert signing.verify_dingtalk(secret, str(ts), expected)
        assert not signing.verify_dingtalk(secret, str(ts + 1), expected)

    def test_dingtalk_without_a_secret_leaves_the_url(self) -> None:
        assert signing.dingtalk_url("https://x/robot?access_token=a", None, 1) == "https://x/robot?access_token=a"

    def test_feishu_sign_keys_the_hmac_with_timestamp_and_secret(self) -> None:
        """飞书: the key is "timestamp\\nsecret" and the message empty (the reverse of 钉钉)."""
        secret, ts = "feishu-secret", 1700000000
        expected = base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
        assert signing.feishu_sign(secret, ts) == expected
        assert signing.verify_feishu(secret, str(ts), expected)
        assert signing.feishu_sign(secret, ts) != base64.b64encode(
            hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()


class TestPacing:
    def test_ten_attempts_span_about_a_day(self) -> None:
        """The default back-off: nine waits doubling from 3 min, each within ±20 % jitter."""
        retry = Retry()
        low = sum(retry.delay(n, 0.0) for n in range(1, retry.attempts))
        high = sum(retry.delay(n, 0.999999) for n in range(1, retry.attempts))
        middle = sum(retry.delay(n, 0.5) for n in range(1, retry.attempts))
        assert retry.attempts == 10
        assert 20 * 3600 < middle < 28 * 3600
        assert low == pytest.approx(middle * 0.8) and high == pytest.approx(middle * 1.2, rel=1e-5)
        assert [retry.delay(n, 0.5) for n in (1, 2, 3)] == [180.0, 360.0, 720.0]

    def test_the_bucket_refills_on_the_clock(self) -> None:
        """20 a minute: 20 at once, then one every 3 s of the clock; what was sent before start counts."""
        t0 = datetime(2026, 12, 1, 2, tzinfo=UTC)
        bucket = TokenBucket(20, t0)
        assert sum(bucket.take(t0) for _ in range(25)) == 20
        assert bucket.next_token_at(t0) == t0 + timedelta(seconds=3)
        assert not bucket.take(t0 + timedelta(seconds=2))
        assert bucket.take(t0 + timedelta(seconds=3.1))
        assert sum(bucket.take(t0 + timedelta(minutes=10)) for _ in range(30)) == 20  # never more than a minute's worth
        restarted = TokenBucket(20, t0, used=18)
        assert sum(restarted.take(t0) for _ in range(5)) == 2
