"""The example notebook runs top to bottom against the demo dataset (a real Jupyter kernel)."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "examples" / "explore_dataset.ipynb"


def test_example_notebook_executes_against_the_demo_dataset(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RGA_DATASET", str(demo_dir / "dataset.zarr"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # mean heart, two overlays, footprint and measurement figures
    text = "".join(o.get("text", "") for o in outputs)
    assert "Dataset inventory (paper Table 2)" in text
    assert "left lung upper lobe" in text
    assert notebook.metadata.kernelspec.name == "python3"
