"""Sign-in sessions and CSRF protection of the dashboard.

- The admin token is exchanged at sign-in for a session cookie (``splitlab_session``, HttpOnly,
  SameSite=Strict, ``Secure`` over https). The cookie holds an expiry and a random nonce signed
  with a key derived from the admin token, so every worker process verifies it without shared
  state, and a new admin token ends every session. The token itself is never sent back, neither
  in a URL nor in a page.
- Every visitor gets a random CSRF cookie (``splitlab_csrf``, HttpOnly, SameSite=Strict); every
  form carries ``csrf``, the cookie's HMAC. A form post is accepted only with that field, and
  only from the server's own origin (``Origin``, else ``Sec-Fetch-Site``, when the browser sends
  them): a post without the token, or a request with the session cookie from another origin, is
  refused with :class:`~splitlab.errors.ForbiddenError`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from splitlab.errors import BadRequestError, ForbiddenError
from splitlab.service.api_support import read_body

SESSION_COOKIE = "splitlab_session"
CSRF_COOKIE = "splitlab_csrf"
SESSION_SECONDS = 8 * 3600
"""A session lasts a working day; then the token is asked again."""


def _sign(key: bytes, purpose: str, text: str) -> str:
    return hmac.new(key, f"{purpose}:{text}".encode(), hashlib.sha256).hexdigest()


def request_origin(request: Request) -> str:
    """``scheme://host[:port]`` of the request as the browser addressed it."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


class Sessions:
    """Issues and checks sessions and CSRF tokens; ``token`` returns the current admin token."""

    def __init__(self, token: Callable[[], str], clock: Callable[[], float] = time.time) -> None:
        self.token = token
        self.clock = clock

    def _key(self) -> bytes:
        return hashlib.sha256(b"splitlab-ui:" + self.token().encode()).digest()

    def token_matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the admin token (constant time)."""
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self.token().encode())

    def new_session(self) -> str:
        """A fresh session cookie value: ``expiry.nonce.signature``."""
        body = f"{int(self.clock()) + SESSION_SECONDS}.{secrets.token_hex(16)}"
        return f"{body}.{_sign(self._key(), 'session', body)}"

    def signed_in(self, request: Request) -> bool:
        """Whether the request carries a valid, unexpired session cookie."""
        value = request.cookies.get(SESSION_COOKIE, "")
        body, _, signature = value.rpartition(".")
        expiry = body.partition(".")[0]
        if not body or not expiry.isdigit() or int(expiry) < self.clock():
            return False
        return hmac.compare_digest(signature, _sign(self._key(), "session", body))

    def csrf_seed(self, request: Request) -> str:
        """The visitor's CSRF cookie value (a new one when absent; :meth:`set_cookies` sends it)."""
        seed = request.cookies.get(CSRF_COOKIE, "")
        if len(seed) == 32 and all(c in "0123456789abcdef" for c in seed):
            return seed
        fresh: str | None = getattr(request.state, "csrf_seed", None)
        if fresh is None:
            fresh = request.state.csrf_seed = secrets.token_hex(16)
        return fresh

    def csrf_token(self, request: Request) -> str:
        """The value every form of this visitor carries in its ``csrf`` field."""
        return _sign(self._key(), "csrf", self.csrf_seed(request))

    def check_post(self, request: Request, form: Mapping[str, str]) -> None:
        """Refuse a form post from another origin or without this visitor's CSRF token."""
        check_origin(request)
        seed = request.cookies.get(CSRF_COOKIE, "")
        sent = form.get("csrf", "")
        if not seed or not sent or not hmac.compare_digest(
                sent, _sign(self._key(), "csrf", seed)):
            raise ForbiddenError("the form's CSRF token is missing or stale; reload the page "
                                 "and send the form again")

    def set_cookies(self, request: Request, response: Response) -> None:
        """Send the CSRF cookie when this request created it."""
        seed = getattr(request.state, "csrf_seed", None)
        if seed:
            _set(request, response, CSRF_COOKIE, seed, None)

    def sign_in(self, request: Request, response: Response) -> None:
        """Attach a new session cookie to ``response``."""
        _set(request, response, SESSION_COOKIE, self.new_session(), SESSION_SECONDS)

    @staticmethod
    def sign_out(response: Response) -> None:
        """Clear the session cookie."""
        response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")


class Form(dict[str, str]):
    """A posted form: the last value of each field, and :meth:`getlist` for repeated ones."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


async def read_form(request: Request) -> Form:
    """The URL-encoded body of a form post (the dashboard's forms upload no files)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise BadRequestError("send the form as application/x-www-form-urlencoded")
    text = (await read_body(request)).decode("utf-8", errors="replace")
    return Form(parse_qsl(text, keep_blank_values=True))


def check_origin(request: Request) -> None:
    """Refuse a request the browser says comes from another origin (or another site)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null" and origin != request_origin(request):
        raise ForbiddenError(f"requests from {origin} are not accepted; use the dashboard "
                             "itself")
    if origin == "null":
        raise ForbiddenError("requests from an opaque origin are not accepted")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise ForbiddenError("cross-site requests are not accepted; use the dashboard itself")


def _set(request: Request, response: Response, name: str, value: str,
         max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/ui", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
