"""SDK counters render as Prometheus text that prometheus_client's own parser reads back."""

from __future__ import annotations

import pytest

from splitlab.sdk import Metrics

from .sdk_helpers import make, row

parser = pytest.importorskip("prometheus_client.parser")


def test_render_round_trips_through_the_prometheus_parser() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.exposure("a-b\"c\\d", "control", "sdk")
    metrics.send_retry()
    families = {f.name: f for f in parser.text_string_to_metric_families(metrics.render())}
    (sample,) = families["splitlab_sdk_exposures"].samples
    assert sample.labels == {"experiment": 'a-b"c\\d', "group": "control", "source": "sdk"}
    assert sample.value == 3
    assert families["splitlab_sdk_send_retries"].samples[0].value == 1


def test_series_are_capped() -> None:
    metrics = Metrics(max_series=2)
    for name in ("one", "two", "three", "four"):
        metrics.unknown_experiment(name, "lookup")
    assert metrics.value("splitlab_sdk_unknown_experiments_total",
                         {"experiment": "__other__", "source": "__other__"}) == 2
    assert metrics.render().count("splitlab_sdk_unknown_experiments_total{") == 3


def test_every_series_of_a_counter_has_the_same_labels() -> None:
    client, _, _ = make([row("known-experiment")])
    client.get_assignment_for_user(1, "missing-one")
    client.manager(user_id=1).get_experiment("missing-two")
    client.manager(user_id=1, query_string="mpo=missing-three:control")
    families = parser.text_string_to_metric_families(client.metrics.render())
    (unknown,) = [f for f in families if f.name == "splitlab_sdk_unknown_experiments"]
    assert {s.labels["experiment"]: s.labels["source"] for s in unknown.samples} == {
        "missing-one": "client", "missing-two": "lookup", "missing-three": "override"}
    assert {frozenset(s.labels) for s in unknown.samples} == {
        frozenset({"experiment", "source"})}


def test_counting_cannot_name_an_unknown_counter() -> None:
    assert not hasattr(Metrics(), "inc")
    assert Metrics().render() == ""
