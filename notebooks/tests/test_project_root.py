"""Where notebooks find the project when no project_root parameter is given: next to the package
in a checkout, or (the package installed from its wheel, as on Databricks) from the notebook's
working directory."""

from pathlib import Path

from sentiment import paths


def test_checkout_root_is_the_parent_of_notebooks():
    assert paths.default_project_root() == paths.NOTEBOOKS_DIR.parent
    assert (paths.default_project_root() / "notebooks" / "sentiment").is_dir()


def test_installed_wheel_uses_the_notebook_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", Path("/tmp/libraries/0123"))
    assert paths.default_project_root(cwd=tmp_path / "repo" / "notebooks") == tmp_path / "repo"
    assert paths.default_project_root(cwd=tmp_path / "elsewhere") == tmp_path / "elsewhere"
