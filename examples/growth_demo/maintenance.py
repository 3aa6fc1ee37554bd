"""A maintenance script over many users: ``python -m growth_demo.maintenance --users 100000``.

Counts the users of each group in the leveling-up experiment (one batch call) and
sends one event for the first few treatment users, to show that a script that exits right away
still delivers its events.
"""

from __future__ import annotations

import argparse
from collections import Counter

from growth_demo.wiring import LEVELING_UP, make_client


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000, help="user ids 1..N")
    parser.add_argument("--notify", type=int, default=3, help="treatment users to send for")
    args = parser.parse_args(argv)
    user_ids = list(range(1, args.users + 1))
    with make_client() as client:
        groups = client.get_assignments_for_users(user_ids, LEVELING_UP)
        counts = Counter(group or "not enrolled" for group in groups)
        treated = [uid for uid, group in zip(user_ids, groups, strict=True) if group == "treatment"]
        for user_id in treated[: args.notify]:
            client.manager(user_id=user_id).get_experiment(LEVELING_UP).send(
                "maintenance_checked", {"action_source": "maintenance"})
    for group, count in sorted(counts.items()):
        print(f"{group:>14} {count:>9}")
    return dict(counts)


if __name__ == "__main__":
    main()
