"""The local runner, through its real command line (a subprocess) and in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import NOTEBOOKS

from pipectl_runner import parse_notebook, run_notebook
from pipectl_runner.notebook import NotebookFormatError

HEADER = "# Databricks notebook source\n"
SEP = "\n# COMMAND ----------\n\n"


def notebook(tmp_path: Path, *cells: str, name: str = "nb.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + SEP.join(cells))
    return path


def cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(NOTEBOOKS)}
    return subprocess.run(
        [sys.executable, "-m", "pipectl_runner", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


GREETER = (
    "# MAGIC %md\n# MAGIC # A greeting notebook",
    'import json\ndbutils.widgets.text("name", "world")\n'
    'dbutils.widgets.dropdown("tone", "plain", ["plain", "loud"])',
    'name = dbutils.widgets.get("name")\ngreeting = f"hello {name}"\nprint(greeting)',
    'dbutils.jobs.taskValues.set("greeting", greeting)\n'
    'dbutils.jobs.taskValues.set("n", {"chars": len(greeting)})\n'
    'dbutils.notebook.exit(json.dumps({"outputs": {"greeting": greeting}, "metrics": {}}))',
    'raise AssertionError("cells after exit must not run")',
)


def test_params_exit_value_and_task_values(tmp_path):
    nb = notebook(tmp_path, *GREETER)
    out, tv = tmp_path / "out" / "result.json", tmp_path / "tv.json"
    proc = cli(str(nb), "--param", "name=pipectl", "--output", str(out), "--task-values-out", str(tv))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello pipectl\n"
    assert out.read_text() == '{"outputs": {"greeting": "hello pipectl"}, "metrics": {}}'  # verbatim
    assert json.loads(tv.read_text()) == {"greeting": "hello pipectl", "n": {"chars": 13}}


def test_widget_defaults_apply_without_params(tmp_path):
    result = run_notebook(notebook(tmp_path, *GREETER))
    assert result.ok and result.exit_value is not None
    assert json.loads(result.exit_value)["outputs"]["greeting"] == "hello world"
    assert result.cells == 5 and result.exit_code == 0


def test_error_names_the_cell_and_exits_1(tmp_path):
    nb = notebook(
        tmp_path,
        "# MAGIC %md\n# MAGIC title",
        "x = 1",
        "def explode():\n    raise ValueError('bad value for x')\n\nexplode()",
        "print('never')",
    )
    err = tmp_path / "err.json"
    proc = cli(str(nb), "--error-output", str(err), "--output", str(tmp_path / "out.json"))
    assert proc.returncode == 1
    assert "cell 3 of 4 failed" in proc.stderr
    assert "ValueError: bad value for x" in proc.stderr
    assert "never" not in proc.stdout
    assert not (tmp_path / "out.json").exists()
    data = json.loads(err.read_text())
    assert data["cell"] == 3 and data["error"] == "ValueError: bad value for x"
    # The trace starts in the notebook, with the file's own line numbers (explode() is on line 10).
    assert data["error_trace"].startswith("Traceback")
    assert f'File "{nb}", line 10' in data["error_trace"] and "pipectl_runner" not in data["error_trace"]


def test_user_error_is_reported_once_through_the_error_file(tmp_path):
    """An exception marked pipectl_user_error (bad input, a wrong parameter) carries its message
    alone and user_error in the error file; with --error-output nothing of it goes to stderr
    (pipectl shows the message once, the traceback stays in the stage log)."""
    nb = notebook(
        tmp_path,
        "class BadInput(ValueError):\n    pipectl_user_error = True",
        "raise BadInput('data.csv: data row 3, column label: fix it')",
    )
    err = tmp_path / "err.json"
    proc = cli(str(nb), "--error-output", str(err))
    assert proc.returncode == 1 and proc.stderr == ""
    data = json.loads(err.read_text())
    assert data["user_error"] is True and data["message"] == "data.csv: data row 3, column label: fix it"
    assert data["error_trace"].startswith("Traceback")
    # Without the file, stderr has it all.
    proc = cli(str(nb))
    assert proc.returncode == 1 and "cell 2 of 2 failed" in proc.stderr and "Traceback" in proc.stderr


def test_other_errors_are_not_user_errors(tmp_path):
    err = tmp_path / "err.json"
    cli(str(notebook(tmp_path, "raise KeyError('x')")), "--error-output", str(err))
    assert "user_error" not in json.loads(err.read_text())


def test_syntax_error_and_unsupported_magic(tmp_path):
    proc = cli(str(notebook(tmp_path, "x = (", name="syntax.py")))
    assert proc.returncode == 1 and "cell 1 of 1 failed" in proc.stderr and "SyntaxError" in proc.stderr
    proc = cli(str(notebook(tmp_path, "# MAGIC %pip install x", "print(1)", name="magic.py")))
    assert proc.returncode == 1 and "%pip is not supported" in proc.stderr


def test_usage_errors_exit_2(tmp_path):
    nb = notebook(tmp_path, "print(1)")
    assert cli(str(tmp_path / "missing.py")).returncode == 2
    proc = cli(str(nb), "--param", "novalue")
    assert proc.returncode == 2 and "expected NAME=VALUE" in proc.stderr
    assert cli(str(nb), "--param", "a=1", "--param", "a=2").returncode == 2
    plain = tmp_path / "plain.py"
    plain.write_text("print(1)\n")
    proc = cli(str(plain))
    assert proc.returncode == 2 and "not a Databricks source-format notebook" in proc.stderr
    bad = tmp_path / "tv.json"
    bad.write_text("[1, 2]")
    assert cli(str(nb), "--task-values-in", str(bad)).returncode == 2
    assert cli(str(nb), "--no-such-flag").returncode == 2


def test_param_values_keep_equals_signs_and_json(tmp_path):
    nb = notebook(
        tmp_path,
        'import json\ndbutils.widgets.text("q", "")\ndbutils.widgets.text("j", "{}")',
        'c = json.loads(dbutils.widgets.get("j"))["C"]\n'
        'dbutils.notebook.exit(dbutils.widgets.get("q") + "|" + str(c))',
    )
    out = tmp_path / "o.txt"
    assert cli(str(nb), "--param", "q=a=b", "--param", 'j={"C": 4}', "--output", str(out)).returncode == 0
    assert out.read_text() == "a=b|4"


TASK_VALUES = (
    "tv = dbutils.jobs.taskValues\n"
    'got = tv.get(taskKey="data", key="data_version", debugValue="debug")\n'
    'fallback = tv.get("data", "missing", default="dflt", debugValue="debug")\n'
    'dbutils.notebook.exit(f"{got}|{fallback}")'
)


def test_task_values_in_act_as_a_job(tmp_path):
    nb = notebook(tmp_path, TASK_VALUES)
    upstream = tmp_path / "in.json"
    upstream.write_text(json.dumps({"data": {"data_version": "v7"}}))
    out = tmp_path / "o.txt"
    assert cli(str(nb), "--task-values-in", str(upstream), "--output", str(out)).returncode == 0
    assert out.read_text() == "v7|dflt"
    # Outside a job (no --task-values-in) get() returns the debugValue.
    assert run_notebook(nb).exit_value == "debug|debug"


def test_task_values_errors(tmp_path):
    nb = notebook(tmp_path, 'dbutils.jobs.taskValues.get("data", "k")')
    result = run_notebook(nb)
    assert not result.ok and "debugValue must be given" in result.error["error"]
    result = run_notebook(nb, task_values_in={"data": {}})
    assert "has no task value 'k'" in result.error["error"]
    result = run_notebook(nb, task_values_in={"train": {"k": 1}})
    assert "no task 'data'" in result.error["error"]
    big = notebook(tmp_path, 'dbutils.jobs.taskValues.set("k", "x" * 50000)', name="big.py")
    assert "the limit is 48 KiB" in run_notebook(big).error["error"]
    bad = notebook(tmp_path, 'dbutils.jobs.taskValues.set("k", object())', name="bad.py")
    assert "not JSON-serialisable" in run_notebook(bad).error["error"]


def test_widgets_shim(tmp_path):
    nb = notebook(
        tmp_path,
        'dbutils.widgets.text("a", "1")\ndbutils.widgets.text("b", "2")\n'
        'assert dbutils.widgets.getAll() == {"a": "1", "b": "9", "extra": "e"}\n'
        'assert dbutils.widgets.get("extra") == "e"  # a job parameter without a widget\n'
        'dbutils.widgets.remove("a")\n'
        'try:\n    dbutils.widgets.get("a")\nexcept Exception as exc:\n    msg = str(exc)\n'
        "dbutils.notebook.exit(msg)",
    )
    result = run_notebook(nb, {"b": "9", "extra": "e"})
    assert result.ok, result.error
    assert result.exit_value == "No input widget named a is defined"
    bad = notebook(tmp_path, 'dbutils.widgets.dropdown("x", "z", ["a", "b"])', name="dd.py")
    assert "not one of the choices" in run_notebook(bad).error["error"]


def test_exit_requires_a_string_and_no_exit_writes_no_output(tmp_path):
    nb = notebook(tmp_path, "dbutils.notebook.exit({'a': 1})")
    assert "expects a string" in run_notebook(nb).error["error"]
    quiet = notebook(tmp_path, "x = 1", name="quiet.py")
    out = tmp_path / "out.json"
    proc = cli(str(quiet), "--output", str(out))
    assert proc.returncode == 0 and not out.exists() and "without dbutils.notebook.exit" in proc.stderr


def test_notebook_directory_is_importable_and_globals(tmp_path):
    (tmp_path / "helper_mod_xyz.py").write_text("VALUE = 41\n")
    nb = notebook(
        tmp_path,
        "import helper_mod_xyz\nassert spark is None\ndisplay('shown')\n"
        "dbutils.notebook.exit(str(helper_mod_xyz.VALUE + 1) + __name__)",
    )
    before = list(sys.path)
    result = run_notebook(nb)
    assert result.exit_value == "42__main__"
    assert sys.path == before  # restored for the next in-process run


def test_fs_shim(tmp_path):
    base = tmp_path / "fs"
    nb = notebook(
        tmp_path,
        f'base = "file:{base}"\n'
        'dbutils.fs.mkdirs(base + "/d")\n'
        'dbutils.fs.put(base + "/d/a.txt", "hello fs")\n'
        'assert dbutils.fs.head(base + "/d/a.txt", 5) == "hello"\n'
        'dbutils.fs.cp(base + "/d/a.txt", base + "/d/b.txt")\n'
        'names = [f.name for f in dbutils.fs.ls(base + "/d")]\n'
        'assert names == ["a.txt", "b.txt"], names\n'
        'assert [f.name for f in dbutils.fs.ls(base)] == ["d/"]\n'
        'try:\n    dbutils.fs.put(base + "/d/a.txt", "again")\nexcept FileExistsError:\n    pass\n'
        'else:\n    raise AssertionError("put must not overwrite")\n'
        'dbutils.fs.rm(base + "/d", recurse=True)\n'
        "dbutils.notebook.exit(str(dbutils.fs.ls(base)))",
    )
    result = run_notebook(nb)
    assert result.ok, result.error
    assert result.exit_value == "[]"
    with pytest.raises(ValueError, match="only handles local paths"):
        from pipectl_runner.dbutils import DBUtils

        DBUtils().fs.ls("dbfs:/tmp")


def test_parse_counts_cells_like_databricks(tmp_path):
    nb = notebook(tmp_path, "# MAGIC %md\n# MAGIC t", "a = 1", "", "b = 2\n")
    cells = parse_notebook(nb)
    assert [c.kind for c in cells] == ["markdown", "python", "python"]
    assert [c.number for c in cells] == [1, 2, 3]
    plain = tmp_path / "plain.py"
    plain.write_text("x = 1\n")
    with pytest.raises(NotebookFormatError):
        parse_notebook(plain)


def test_sigterm_unwinds_the_notebook(tmp_path):
    marker = tmp_path / "cleaned-up"
    started = tmp_path / "started"
    nb = notebook(
        tmp_path,
        "import time, pathlib\n"
        f"try:\n    pathlib.Path({str(started)!r}).touch()\n    time.sleep(60)\n"
        f"finally:\n    pathlib.Path({str(marker)!r}).write_text('unwound')",
    )
    err = tmp_path / "err.json"
    env = {**os.environ, "PYTHONPATH": str(NOTEBOOKS)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipectl_runner", str(nb), "--error-output", str(err)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 30
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert marker.read_text() == "unwound"  # finally blocks (and `with mlflow.start_run()`) ran
    assert "cell 1 of 1 was stopped" in stderr
    assert json.loads(err.read_text())["cell"] == 1


def test_stage_notebooks_declare_every_stage_parameter():
    """Each notebook declares exactly its stage module's WIDGETS (the documented parameters)."""
    from sentiment.stages import data, evaluate, inference, train

    for name, module in {
        "create_data.py": data,
        "train_model.py": train,
        "evaluate_models.py": evaluate,
        "run_inference.py": inference,
    }.items():
        cells = parse_notebook(NOTEBOOKS / name)
        assert cells[0].kind == "markdown"
        assert f"stages import {module.__name__.rsplit('.', 1)[1]} as stage" in cells[1].source
        assert "dbutils.notebook.exit(json.dumps(result.exit_value()))" in cells[-1].source
        assert "dbutils.jobs.taskValues.set(key, value)" in cells[-1].source
        stages_md = (NOTEBOOKS.parent / "docs" / "STAGES.md").read_text()
        for param in module.WIDGETS:
            assert f"`{param}`" in stages_md, f"{name}: parameter {param} is not documented in docs/STAGES.md"
