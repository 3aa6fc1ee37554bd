"""What ``import splitlab`` offers: the core's ``assign`` and, loaded on first use,
``assign_many`` (as the README shows), without importing the bulk machinery up front."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_splitlab_gives_assign_many_without_loading_it() -> None:
    import splitlab
    import splitlab.bulk
    from splitlab import assign_many

    assert assign_many is splitlab.bulk.assign_many
    assert "assign_many" in splitlab.__all__
    experiment = splitlab.Experiment.from_config({
        "name": "public-api-exp", "groups": ["a", "b"], "sample_rate": {"default": 0.5},
        "user_identifier_type": "mw-user"})
    assert list(assign_many(range(50), experiment)) == [
        splitlab.assign(i, experiment) for i in range(50)]
    script = ("import sys, splitlab; print(sorted(m for m in ('splitlab.bulk', "
              "'multiprocessing', 'concurrent.futures') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        splitlab.nothing  # noqa: B018
