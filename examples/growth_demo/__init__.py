"""A small product that runs A/B tests with the splitlab SDK: sign-up, page views, an API
endpoint, a job on RQ (Redis) that runs 48 hours after sign-up, and a maintenance script.

See ``examples/README.md`` for how to run it against ``splitlab serve``.
"""
