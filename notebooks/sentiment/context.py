"""Context parameters: set by the executor, never by the spec (docs/STAGES.md).

An empty context parameter means "not set"; every field has a sensible default so a notebook also
runs interactively, on Databricks or locally, with no executor around it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import params as P
from .paths import default_project_root, is_safe_segment

#: Widgets every stage notebook declares, with their (empty = not set) defaults.
CONTEXT_WIDGETS: dict[str, str] = {
    "pipectl_run_id": "",
    "pipectl_pipeline": "",
    "pipectl_stage": "",
    "pipectl_target": "",
    "data_root": "",
    "output_root": "",
    "project_root": "",
    "mlflow_tracking_uri": "",
    "mlflow_registry_uri": "",
    "experiment_root": "",
    "uc_catalog": "",
    "uc_schema": "",
    "git_commit": "",
}


@dataclass(frozen=True)
class Context:
    run_id: str
    pipeline: str
    stage: str
    target: str
    project_root: Path
    data_root: Path
    output_root: Path
    tracking_uri: str
    registry_uri: str
    experiment_root: str
    uc_catalog: str
    uc_schema: str
    git_commit: str

    @classmethod
    def from_params(cls, raw: Mapping[str, str]) -> Context:
        def text(name: str) -> str:
            value = P.get(raw, name).strip()
            return "" if P.is_null(value) else value

        project_root = Path(text("project_root") or default_project_root())
        data_root = Path(text("data_root") or project_root / ".pipectl" / "data")
        output_root = Path(text("output_root") or project_root / ".pipectl" / "predictions")
        run_id = text("pipectl_run_id")
        if run_id and not is_safe_segment(run_id):
            # It names the predictions directory of the run.
            raise P.ParamError(f"parameter 'pipectl_run_id' must be a safe path segment, got {run_id!r}")
        catalog, schema = text("uc_catalog"), text("uc_schema")
        if bool(catalog) != bool(schema):
            raise P.ParamError(
                "parameters 'uc_catalog' and 'uc_schema' must be set together "
                f"(got uc_catalog={catalog!r}, uc_schema={schema!r})"
            )
        return cls(
            run_id=run_id,
            pipeline=text("pipectl_pipeline"),
            stage=text("pipectl_stage"),
            target=text("pipectl_target"),
            project_root=project_root,
            data_root=data_root,
            output_root=output_root,
            tracking_uri=text("mlflow_tracking_uri"),
            registry_uri=text("mlflow_registry_uri"),
            experiment_root=text("experiment_root").rstrip("/"),
            uc_catalog=catalog,
            uc_schema=schema,
            git_commit=text("git_commit"),
        )

    def resolve(self, path: str) -> Path:
        """A path from the spec: relative paths are relative to the project root."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.project_root / p

    def run_id_or_manual(self) -> str:
        """The pipectl run id, or a timestamped id for interactive runs."""
        if self.run_id:
            return self.run_id
        return "manual-" + _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    def tags(self) -> dict[str, str]:
        """Tags linking MLflow objects back to the pipectl run (only the ones that are set)."""
        tags = {
            "pipectl.run_id": self.run_id,
            "pipectl.pipeline": self.pipeline,
            "pipectl.stage": self.stage,
            "pipectl.target": self.target,
        }
        if self.git_commit:
            tags["mlflow.source.git.commit"] = self.git_commit
        return {k: v for k, v in tags.items() if v}
