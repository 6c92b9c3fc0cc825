"""Storage options from flags, the Dask config and redaction (storage/location.py)."""

import dask
import pytest

from storage.location import StoreRef, parse_storage_options, redact, resolve_storage_options


def test_flags_parse_as_json_when_they_can():
    options = parse_storage_options(
        ["endpoint_url=http://127.0.0.1:9000", "anon=true", 'client_kwargs={"region_name": "x"}']
    )
    assert options == {
        "endpoint_url": "http://127.0.0.1:9000",
        "anon": True,
        "client_kwargs": {"region_name": "x"},
    }
    with pytest.raises(ValueError, match="must look like KEY=VALUE"):
        parse_storage_options(["no-equals-sign"])


def test_the_dask_config_supplies_defaults_and_flags_win():
    with dask.config.set({"rga.storage-options": {"anon": False, "endpoint_url": "http://a"}}):
        assert resolve_storage_options({"endpoint_url": "http://b"}) == {
            "anon": False,
            "endpoint_url": "http://b",
        }
        assert StoreRef("s3://bucket/x.zarr").storage_options["endpoint_url"] == "http://a"
        assert StoreRef("local/x.zarr").storage_options == {}  # local paths take no options
    assert resolve_storage_options() == {}


def test_credentials_are_redacted_and_never_in_reprs():
    options = {"key": "AKIAXYZ", "client_kwargs": {"aws_secret_access_key": "s3cr3t"}, "anon": "no"}
    text = "failed with AKIAXYZ and s3cr3t at http://host anon no"
    assert redact(text, options) == "failed with *** and *** at http://host anon no"
    assert "AKIAXYZ" not in repr(StoreRef("s3://b/x", options))
