"""docs/grafana-dashboard.json: valid JSON Grafana imports (a Prometheus data-source input), and
every metric its queries use is one cargobay exports, under the name Prometheus scrapes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from cargobay.api import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def exported() -> set[str]:
    """Every series name ``/metrics`` has (counters' ``_total``, histograms' ``_bucket`` ...)."""
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Histogram):
            names |= {f"{value._name}_{s}" for s in ("bucket", "sum", "count")}
        elif isinstance(value, Gauge):
            names.add(value._name)
    counts = metrics.StoreCounts(lambda: {"blobs": 1, "manifests": 2, "uploads": 3})
    names |= {family.name for family in counts.collect()}
    return names


def test_every_query_uses_a_metric_cargobay_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(?:registry|cargobay)_[a-z_]+", e)}
    assert used, exprs
    assert used <= exported(), used - exported()
    # Every exported metric has a panel.
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in exported()}
    assert families <= {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
