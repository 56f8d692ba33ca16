"""The Colab quick-start notebook runs top to bottom (so it cannot rot) on its default source, as
on Colab: CIFAR-10 downloaded and prepared by tfds (the download served from an archive of the
real images, tests/tfds_download.py), from an empty data folder."""


import os
import sys

import nbformat
import pytest
from conftest import REAL_DATA, REPO
from nbclient import NotebookClient
from tfds_download import ARCHIVE_ENV, folder_batches, write_archive

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not REAL_DATA.is_dir(),
                                                reason="needs ../shared's CIFAR-10 JPEGs")]


def test_the_quickstart_notebook_runs_and_shows_its_figures(tmp_path, monkeypatch):
    archive = write_archive(tmp_path / "cifar-10-binary.tar.gz",
                            folder_batches(str(REAL_DATA), per_class=1000))
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "serve_cifar10.py").write_text(
        "import tfds_download\ntfds_download.serve_from_environment()\n")
    # The kernel inherits these: the download served, an empty tfds data folder.
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv(ARCHIVE_ENV, str(archive))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "tests"), *sys.path]))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tensorflow_datasets"))
    monkeypatch.setenv("JAXCOLOR_CACHE_DIR", str(tmp_path / "cache"))
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
    assert (tmp_path / "tensorflow_datasets" / "jaxcolor_cifar10").is_dir()
