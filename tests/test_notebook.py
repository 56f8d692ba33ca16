"""The Colab quick-start notebook runs top to bottom (so it cannot rot), on the real images."""


import nbformat
import pytest
from conftest import REAL_DATA, REPO
from nbclient import NotebookClient

pytestmark = pytest.mark.skipif(not REAL_DATA.is_dir(), reason="needs ../shared's CIFAR-10 JPEGs")


def test_the_quickstart_notebook_runs_and_shows_its_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCOLOR_IMAGE_DIR", str(REAL_DATA))  # the kernel inherits it
    notebook = nbformat.read(REPO / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # training curve, sample grid, colourized photo
    text = "".join(o.get("text", "") for o in outputs)
    assert "validation pixel accuracy after 3 epochs" in text
    assert (tmp_path / "results" / "quickstart" / "results.json").exists()
