"""The failure report beside a sources store (storage/reports.py)."""

import json

from storage.location import StoreRef
from storage.reports import read_report, report_ref, update_report


def test_a_run_replaces_the_entries_of_the_studies_it_attempted(tmp_path):
    sources = StoreRef(str(tmp_path / "sources.zarr"))
    assert report_ref(sources).url == str(tmp_path / "sources.zarr.failures.json")
    assert read_report(sources)["failures"] == {}
    run = {"layout": "generic"}
    url = update_report(sources, ["a", "b", "c"], {"b": "bad", "a": "worse"}, {"c": ["odd"]}, run)
    report = json.loads((tmp_path / "sources.zarr.failures.json").read_text())
    assert url.endswith("sources.zarr.failures.json")
    assert list(report["failures"]) == ["a", "b"] and report["warnings"] == {"c": ["odd"]}
    update_report(sources, ["a", "c"], {}, {}, run)  # a fixed, c re-ingested without warning
    report = read_report(sources)
    assert report["failures"] == {"b": "bad"} and report["warnings"] == {}
    assert report["last_run"] == run


def test_same_outcome_same_bytes(tmp_path):
    contents = []
    for name in ("one.zarr", "two.zarr"):
        sources = StoreRef(str(tmp_path / name))
        update_report(sources, ["x", "y"], {"y": "e", "x": "f"}, {"x": ["w"]}, {"layout": "g"})
        contents.append((tmp_path / f"{name}.failures.json").read_text().replace(name, ""))
    assert contents[0] == contents[1]
