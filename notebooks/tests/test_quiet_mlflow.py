"""MLflow's own chatter is held back unless PIPECTL_VERBOSE=1 (`pipectl run -v`)."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from sentiment import tracking as T


@pytest.fixture
def mlflow_logger():
    logger = logging.getLogger("mlflow")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_default_keeps_mlflow_to_errors_and_drops_dead_links(monkeypatch, mlflow_logger):
    monkeypatch.delenv("PIPECTL_VERBOSE", raising=False)
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    mlflow_logger.setLevel(logging.INFO)
    T.quiet_mlflow()
    assert mlflow_logger.level == logging.ERROR
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"


def test_verbose_leaves_mlflow_alone(monkeypatch, mlflow_logger):
    monkeypatch.setenv("PIPECTL_VERBOSE", "1")
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    mlflow_logger.setLevel(logging.INFO)
    T.quiet_mlflow()
    assert mlflow_logger.level == logging.INFO
    with T.mlflow_chatter():
        print("Created version '1'", file=sys.stderr)


def test_chatter_is_held_back_and_shown_on_error(monkeypatch, capsys):
    monkeypatch.delenv("PIPECTL_VERBOSE", raising=False)
    with T.mlflow_chatter():
        print("Created version '1' of model 'm'.", file=sys.stderr)
    assert capsys.readouterr().err == ""
    with pytest.raises(RuntimeError), T.mlflow_chatter():
        print("what led to the failure", file=sys.stderr)
        raise RuntimeError("boom")
    assert "what led to the failure" in capsys.readouterr().err
    monkeypatch.setenv("PIPECTL_VERBOSE", "1")
    with T.mlflow_chatter():
        print("shown", file=sys.stderr)
    assert "shown" in capsys.readouterr().err
