"""What an acknowledgement says about a published message (:func:`refused`), on the answers
NATS JetStream sends (the server's JSON API shapes, written out here by hand)."""

from __future__ import annotations

from nats.aio.msg import Msg

from splitlab.intake.jetstream import refused


def answer(data: bytes, headers: dict[str, str] | None = None) -> Msg:
    return Msg(_client=None, subject="_INBOX.x.1", data=data, headers=headers)  # type: ignore[arg-type]


def test_stored_and_duplicate_messages_are_not_refused() -> None:
    assert refused(answer(b'{"stream":"EVENTS","seq":41}')) == ""
    assert refused(answer(b'{"stream":"EVENTS","seq":41,"duplicate":true}')) == ""
    assert refused(answer(b'{"stream":"EVENTS","domain":"hub","seq":1}')) == ""


def test_refusals_say_why() -> None:
    full = b'{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}'
    assert refused(answer(full)) == "maximum messages exceeded"
    assert refused(answer(b"", {"Status": "503"})) == (
        "no stream takes the subject (status 503, no responders)")
    assert refused(answer(b"", {"Status": "408", "Description": "Request Timeout"})) == (
        "status 408 Request Timeout")
    assert refused(answer(b"not json")) == "an acknowledgement that is not JSON"
    assert refused(answer(b"[1]")) == "an acknowledgement that is not a JSON object"
    assert refused(answer(b'{"stream":"EVENTS"}')) == "an acknowledgement without a sequence"
    assert refused(answer(b'{"error":"bad"}')) == "bad"
