"""SDK counters render as Prometheus text that prometheus_client's own parser reads back."""

from __future__ import annotations

import pytest

from splitlab.sdk import Metrics

parser = pytest.importorskip("prometheus_client.parser")


def test_render_round_trips_through_the_prometheus_parser() -> None:
    metrics = Metrics()
    metrics.inc("splitlab_sdk_exposures_total",
                {"experiment": "a-b\"c\\d", "group": "control", "source": "sdk"})
    metrics.inc("splitlab_sdk_exposures_total",
                {"experiment": "a-b\"c\\d", "group": "control", "source": "sdk"}, 2)
    metrics.inc("splitlab_sdk_send_retries_total")
    families = {f.name: f for f in parser.text_string_to_metric_families(metrics.render())}
    (sample,) = families["splitlab_sdk_exposures"].samples
    assert sample.labels == {"experiment": 'a-b"c\\d', "group": "control", "source": "sdk"}
    assert sample.value == 3
    assert families["splitlab_sdk_send_retries"].samples[0].value == 1


def test_series_are_capped() -> None:
    metrics = Metrics(max_series=2)
    for name in ("one", "two", "three", "four"):
        metrics.inc("splitlab_sdk_unknown_experiments_total", {"experiment": name})
    assert metrics.value("splitlab_sdk_unknown_experiments_total",
                         {"experiment": "__other__"}) == 2
    assert metrics.render().count("splitlab_sdk_unknown_experiments_total{") == 3


def test_unknown_counters_are_misuse() -> None:
    with pytest.raises(TypeError):
        Metrics().inc("made_up_total")
    assert Metrics().render() == ""
