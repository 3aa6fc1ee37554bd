"""Background jobs, run by an RQ worker: ``cd examples && rq worker growth-demo``."""

from __future__ import annotations

from growth_demo.wiring import LEVELING_UP, make_client


def leveling_up_notice(user_id: int) -> str | None:
    """Sent 48 hours after sign-up: which notice the user gets depends on their group, asked
    again now (same answer as at sign-up, no per-user storage). Returns the group sent, or
    ``None`` when the user is not in the experiment (or it has ended)."""
    with make_client() as client:  # closing the client delivers the event before the job ends
        group = client.get_assignment_for_user(user_id, LEVELING_UP)
        if group is None:
            return None
        print(f"notify user {user_id}: leveling-up notice, variant {group}")
        manager = client.manager(user_id=user_id)
        manager.get_experiment(LEVELING_UP).send(
            "notification_sent", {"action_source": "job", "action_context": "leveling_up"})
        return group
