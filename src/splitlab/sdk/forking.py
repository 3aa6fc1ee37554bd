"""Locks that survive ``fork``: a child process gets fresh ones.

A lock held by another thread of the parent at the moment of ``fork`` stays held forever in the
child (that thread does not exist there). Pre-fork servers (gunicorn, uvicorn ``--workers``)
fork after the SDK may have started work, so every lock the SDK shares across threads is
replaced in the child right after the fork.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable


def renew_lock_after_fork(owner: object, attribute: str) -> None:
    """After a fork, set ``owner.<attribute>`` to a new :class:`threading.Lock` in the child.

    The hook holds only a weak reference, so it does not keep ``owner`` alive.
    """
    os.register_at_fork(after_in_child=_renewer(weakref.ref(owner), attribute))


def _renewer(ref: weakref.ref[object], attribute: str) -> Callable[[], None]:
    def renew() -> None:
        owner = ref()
        if owner is not None:
            setattr(owner, attribute, threading.Lock())

    return renew
