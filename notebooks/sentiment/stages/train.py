"""The train stage: fit one model on a data version, evaluate it on the test split, log and
register it in MLflow (docs/STAGES.md, "train")."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import params as P
from .. import tracking as T
from ..context import CONTEXT_WIDGETS, Context
from ..result import StageResult

WIDGETS: dict[str, str] = {
    "data_name": "financial_news",
    "data_version": "v1",
    "model_name": "financial_sentiment",
    "model_type": "logistic_regression",
    "model_params": "{}",
    "features": "{}",
    "seed": "42",
    "max_split_rows": "",  # empty: dataset.DEFAULT_MAX_SPLIT_ROWS
    "max_split_bytes": "",  # empty: dataset.DEFAULT_MAX_SPLIT_BYTES
    **CONTEXT_WIDGETS,
}

#: Scalar metrics reported in the exit value (all of them, and per class, go to MLflow).
SUMMARY_METRICS = ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "roc_auc_ovr")


@dataclass(frozen=True)
class TrainParams:
    data_name: str
    data_version: str
    model_name: str
    model_type: str
    model_params: dict[str, Any]
    features: dict[str, Any]
    seed: int
    max_split_rows: int | None = None
    max_split_bytes: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> TrainParams:
        from ..dataset import DEFAULT_MAX_SPLIT_BYTES, DEFAULT_MAX_SPLIT_ROWS
        from ..features import resolve_features
        from ..models import MODEL_TYPES
        from ..tracking import check_model_name

        return cls(
            data_name=P.segment(raw, "data_name"),
            data_version=P.segment(raw, "data_version"),
            model_name=check_model_name(P.required(raw, "model_name")),
            model_type=P.choice(raw, "model_type", MODEL_TYPES, "logistic_regression"),
            model_params=P.json_object(raw, "model_params"),
            features=resolve_features(P.json_object(raw, "features")),
            seed=P.integer(raw, "seed", 42, low=0),
            max_split_rows=P.integer(raw, "max_split_rows", DEFAULT_MAX_SPLIT_ROWS, low=1),
            max_split_bytes=P.integer(raw, "max_split_bytes", DEFAULT_MAX_SPLIT_BYTES, low=1),
        )


def run(raw: Mapping[str, str]) -> StageResult:
    raw = {**WIDGETS, **raw}  # a direct call may leave parameters out: use the widget defaults
    ctx = Context.from_params(raw)
    p = TrainParams.parse(raw)
    return train(p, ctx)


def _flat_params(p: TrainParams, ctx: Context, manifest_sha256: str, registered: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model_type": p.model_type,
        "model_name": registered,
        "data_name": p.data_name,
        "data_version": p.data_version,
        "data_manifest_sha256": manifest_sha256,
        "seed": p.seed,
        "git_commit": ctx.git_commit or "unknown",
    }
    out.update({f"features.{k}": json.dumps(v) for k, v in p.features.items()})
    out.update({f"model.{k}": json.dumps(v) for k, v in sorted(p.model_params.items())})
    return out


def pip_requirements() -> list[str]:
    # Given explicitly so MLflow does not infer them by re-loading the model in a subprocess
    # (several seconds per model).
    from importlib.metadata import version

    return [
        f"{dist}=={version(dist)}"
        for dist in ("mlflow", "scikit-learn", "cloudpickle", "numpy", "scipy", "pandas")
    ]


def train(p: TrainParams, ctx: Context) -> StageResult:
    from ..dataset import load_split, load_version
    from ..models import build_pipeline, finish_fitted, pickled_by_value

    # Build first: bad model_params fail before any data is read or any MLflow run is started.
    model = build_pipeline(p.model_type, p.model_params, p.features, p.seed)
    version = load_version(ctx.data_root, p.data_name, p.data_version)
    limits = {"max_rows": p.max_split_rows, "max_bytes": p.max_split_bytes}
    train_df, test_df = load_split(version, "train", **limits), load_split(version, "test", **limits)
    print(f"data {p.data_name}/{p.data_version}: train {len(train_df)} rows, test {len(test_df)} rows")

    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from .. import metrics as M

    T.configure(ctx)
    registered = T.registered_name(ctx, p.model_name)
    experiment = T.use_experiment(ctx, p.model_name)
    inputs = inputs_sha256(p, version.sha256, registered)
    labels = sorted(set(train_df["label"].tolist()))
    earlier = reuse_earlier_attempt(ctx, experiment, registered, inputs, p.model_type)
    if earlier is not None:
        # A version registered by an older release of this stage has no tags yet.
        tags = version_tags(p, version.sha256, earlier.metrics, labels)
        _tag_version(registered, earlier.outputs["model_version"], tags)
        return earlier
    tags = {**ctx.tags(), "data_name": p.data_name, "data_version": p.data_version, TAG_INPUTS: inputs}

    with mlflow.start_run(run_name=p.model_type, tags=tags) as run:
        print(f"MLflow run {run.info.run_id} in experiment {experiment}")
        mlflow.log_params(_flat_params(p, ctx, version.sha256, registered))
        for split, df, context in (("train", train_df, "training"), ("test", test_df, "testing")):
            T.log_input_retrying(mlflow.log_input, _dataset(mlflow, df, version, split), context)

        started = time.perf_counter()
        model.fit(train_df["text"].tolist(), train_df["label"].tolist())
        fit_seconds = time.perf_counter() - started
        print(f"fitted {p.model_type} in {fit_seconds:.1f}s")

        y_pred, proba, classes = M.predict(model, test_df["text"].tolist())
        result = M.compute(test_df["label"].tolist(), y_pred, proba, classes)
        scalars = result["scalars"]
        mlflow.log_metrics({**M.flat(result), "fit_seconds": fit_seconds})
        fig = M.confusion_figure(
            result["confusion_matrix"], classes, f"{p.model_type} on {p.data_name}/{p.data_version} test"
        )
        mlflow.log_figure(fig, "confusion_matrix.png")
        mlflow.log_dict(
            {
                "split": "test",
                "labels": classes,
                "confusion_matrix": result["confusion_matrix"],
                "per_class": result["per_class"],
                "report": result["report"],
            },
            "classification_report.json",
        )

        # What is saved: stock scikit-learn only. After scoring, which the fast path's own
        # transform does faster, with the same numbers.
        model = finish_fitted(model)
        examples = train_df["text"].head(5).tolist()
        import pandas as pd

        signature = infer_signature(pd.DataFrame({"text": examples}), model.predict(examples))
        T.allow_model_loading()
        # Only scikit-learn classes and TextNormalizer, pickled by value: the model loads
        # without this package (no code_paths to ship, nothing of ours to break on upgrades).
        with pickled_by_value(), T.mlflow_chatter():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=signature,
                input_example=pd.DataFrame({"text": examples[:2]}),
                registered_model_name=registered,
                # Set with the version, in the same transaction: the version says which attempt
                # made it however early that attempt is killed (see reuse_earlier_attempt).
                tags={**ctx.tags(), TAG_INPUTS: inputs, **version_tags(p, version.sha256, scalars, labels)},
                # cloudpickle, as on Databricks: skops stores every TF-IDF vocabulary entry as a
                # JSON node (30x larger files, seconds to save and load per model).
                serialization_format="cloudpickle",
                pip_requirements=pip_requirements(),
            )
        model_version = str(info.registered_model_version)

    print(
        f"registered {registered} version {model_version}: "
        + ", ".join(f"{k}={scalars[k]:.4f}" for k in SUMMARY_METRICS)
    )
    return StageResult(
        outputs={
            "run_id": run.info.run_id,
            "model_name": registered,
            "model_version": model_version,
            "model_uri": f"models:/{registered}/{model_version}",
            "model_type": p.model_type,
        },
        metrics={k: scalars[k] for k in SUMMARY_METRICS},
    )


#: Model version tag: the sorted JSON list of the classes the model was trained on (evaluate
#: compares a candidate only with a champion of the same data_name and labels).
TAG_LABELS = "labels"


def version_tags(p: TrainParams, manifest: str, scalars: Any, labels: list[str]) -> dict[str, str]:
    """What a registered version says about its training (docs/STAGES.md, "train")."""
    return {
        "model_type": p.model_type,
        "data_name": p.data_name,
        "data_version": p.data_version,
        "data_manifest_sha256": manifest,
        TAG_LABELS: json.dumps(sorted(labels), ensure_ascii=False),
        "test_f1_macro": f"{scalars['f1_macro']:.4f}",
    }


def _tag_version(registered: str, model_version: str, tags: Mapping[str, str]) -> None:
    client = T.client()
    current = client.get_model_version(registered, model_version).tags or {}
    for key, value in tags.items():
        if current.get(key) != value:
            client.set_model_version_tag(registered, model_version, key, value)


#: MLflow run tag: the hash of what the run trained (see `inputs_sha256`).
TAG_INPUTS = "pipectl.inputs_sha256"


def inputs_sha256(p: TrainParams, manifest_sha256: str, registered: str) -> str:
    """What defines the trained model: parameters, the exact data version, the registered name and
    the package's code."""
    import hashlib

    from ..dataset import code_sha256

    doc = {
        "model_type": p.model_type,
        "model_params": p.model_params,
        "features": p.features,
        "seed": p.seed,
        "data": [p.data_name, p.data_version, manifest_sha256],
        "registered": registered,
        "code": code_sha256(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def reuse_earlier_attempt(
    ctx: Context, experiment: str, registered: str, inputs: str, model_type: str
) -> StageResult | None:
    """A model version registered by an earlier attempt of this stage in this pipectl run, with the
    same inputs, or None.

    pipectl runs one attempt of a stage at a time, and re-runs a stage whose outcome it did not
    record: after `kill -9` of pipectl (`--resume`), a crashed executor, a retry. The notebook of
    the earlier attempt may have registered its version just before it was stopped; training again
    would register a second version for the same run and stage. So the earlier attempt's version is
    reused: found by the pipectl tags it was created with, or (versions registered before those
    tags existed, registries that return no version tags) by the earlier attempt's MLflow run,
    searched by its pipectl tags in every experiment. That attempt's runs still RUNNING (dead: no
    attempt runs beside this one) are ended KILLED.
    """
    if not ctx.run_id or not ctx.stage or "'" in ctx.run_id + ctx.stage or experiment.startswith("("):
        return None  # interactive use: every run trains
    client = T.client()
    runs = T.search_runs_everywhere(
        f"tags.`pipectl.run_id` = '{ctx.run_id}' and tags.`pipectl.stage` = '{ctx.stage}'", experiment
    )
    for run in runs:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "KILLED")
            print(f"ended MLflow run {run.info.run_id} of an earlier attempt of this stage as KILLED")
    same_inputs = {r.info.run_id: r for r in runs if r.data.tags.get(TAG_INPUTS) == inputs}
    mine = {"pipectl.run_id": ctx.run_id, "pipectl.stage": ctx.stage, TAG_INPUTS: inputs}
    versions = [
        v
        for v in client.search_model_versions(f"name='{registered}'")
        if v.status == "READY"
        and (v.run_id in same_inputs or all((v.tags or {}).get(k) == want for k, want in mine.items()))
    ]
    for v in sorted(versions, key=lambda v: int(v.version)):
        run = same_inputs.get(v.run_id) or client.get_run(v.run_id)
        metrics = run.data.metrics
        if not all(k in metrics for k in SUMMARY_METRICS):
            continue
        print(
            f"reusing {registered} version {v.version}: MLflow run {v.run_id} of an earlier attempt "
            f"of stage {ctx.stage} in pipectl run {ctx.run_id} registered it with the same inputs"
        )
        return StageResult(
            outputs={
                "run_id": v.run_id,
                "model_name": registered,
                "model_version": str(v.version),
                "model_uri": f"models:/{registered}/{v.version}",
                "model_type": model_type,
            },
            metrics={k: metrics[k] for k in SUMMARY_METRICS},
        )
    return None


#: Rows MLflow infers a logged dataset's schema from. It would otherwise read every value of the
#: frame (about 18 s for 700,000 texts); the split files have fixed string columns.
SCHEMA_SAMPLE_ROWS = 1000


def _dataset(mlflow: Any, df: Any, version: Any, split: str) -> Any:
    from mlflow.models import infer_signature

    m = version.manifest
    info = m["splits"][split]
    name = f"{m['data_name']}/{m['data_version']}/{split}"
    source = str(version.path / info["file"])
    digest = info["sha256"][:16]
    with warnings.catch_warnings():
        # MLflow registers two identical local-file sources and warns that it picked one.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        try:
            dataset = mlflow.data.from_pandas(df, source=source, targets="label", name=name, digest=digest)
        except Exception:  # noqa: BLE001 - a path MLflow cannot classify: keep the data, lose the source
            dataset = mlflow.data.from_pandas(df, targets="label", name=name, digest=digest)
    # `schema` is a cached property: fill it from a sample. The profile (row count) stays exact.
    dataset.__dict__["schema"] = infer_signature(df.head(SCHEMA_SAMPLE_ROWS)).inputs
    return dataset
