"""MLflow helpers: URIs, experiment and registered-model names, loading models, aliases.

Tracking and registry URIs come from the context parameters when set (local executor: its MLflow
server; Databricks: `databricks` / `databricks-uc`), otherwise MLflow's own environment variables and
defaults apply, so a notebook also runs interactively.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .context import Context
from .params import ParamError

_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$")
_MODELS_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_MODELS_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[A-Za-z0-9_-]+)$")
_RUNS = re.compile(r"^runs:/(?P<run_id>[0-9A-Za-z]+)/(?P<path>.+)$")


#: Set to 1 (by `pipectl run -v`) to keep MLflow's own messages; see `quiet_mlflow`.
VERBOSE_ENV = "PIPECTL_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


def quiet_mlflow() -> None:
    """Unless PIPECTL_VERBOSE is 1, keep MLflow's own logging to errors (its INFO lines and the
    pickle-format warning every model log prints: the format is chosen on purpose, see train) and
    drop its "View run" links, which point at the local executor's per-run server and are dead
    once the run ends (pipectl links to `pipectl ui` instead)."""
    if verbose():
        return
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.getLogger("mlflow").setLevel(logging.ERROR)


@contextlib.contextmanager
def mlflow_chatter() -> Iterator[None]:
    """Hold back what MLflow prints straight to stderr inside the block (the "registered model" and
    "created version" notes of log_model), unless PIPECTL_VERBOSE is 1; on an error it is printed
    after all, so nothing that explains a failure is lost."""
    if verbose():
        yield
        return
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    except BaseException:
        sys.stderr.write(held.getvalue())
        raise


def configure(ctx: Context) -> None:
    import mlflow

    quiet_mlflow()
    if ctx.tracking_uri:
        mlflow.set_tracking_uri(ctx.tracking_uri)
    if ctx.registry_uri:
        mlflow.set_registry_uri(ctx.registry_uri)


def check_model_name(model_name: str) -> str:
    if not _MODEL_NAME.match(model_name):
        raise ParamError(
            f"parameter 'model_name' must be letters, digits, '_' or '-' (no catalog/schema: those "
            f"come from uc_catalog/uc_schema), got {model_name!r}"
        )
    return model_name


def registered_name(ctx: Context, model_name: str) -> str:
    """`<catalog>.<schema>.<model>` on Unity Catalog, the plain name otherwise."""
    if ctx.uc_catalog:
        return f"{ctx.uc_catalog}.{ctx.uc_schema}.{model_name}"
    return model_name


def short_name(registered: str) -> str:
    return registered.rsplit(".", 1)[-1]


def experiment_name(ctx: Context, model_name: str) -> str:
    return f"{ctx.experiment_root}/{model_name}" if ctx.experiment_root else model_name


def use_experiment(ctx: Context, model_name: str) -> str:
    """Select (creating if needed) the experiment of `model_name`; returns its name."""
    import mlflow

    name = experiment_name(ctx, model_name)
    if mlflow.get_tracking_uri().startswith("databricks"):
        if not name.startswith("/"):
            # Databricks experiments are workspace paths. Without experiment_root (interactive
            # use) keep the notebook's own experiment rather than fail.
            print(f"note: no experiment_root; logging to the notebook's experiment, not {name!r}")
            return "(notebook experiment)"
        _ensure_workspace_dir(name.rsplit("/", 1)[0])
    # By id: when two processes create the same experiment at once, the loser's
    # mlflow.set_experiment(name) returns the experiment without making it the active one, and
    # its runs land in experiment 0 ("Default").
    mlflow.set_experiment(experiment_id=get_or_create_experiment(name))
    return name


def get_or_create_experiment(name: str) -> str:
    """The id of experiment `name`, created if it does not exist. Parallel stages of a fresh store
    create it at the same moment: the loser's RESOURCE_ALREADY_EXISTS means the winner made it."""
    from mlflow.exceptions import MlflowException

    c = client()
    experiment = c.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return c.create_experiment(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    experiment = c.get_experiment_by_name(name)
    if experiment is None:  # created and deleted in between: let MLflow say so
        raise MlflowException(f"experiment {name!r} was created by another process and is gone")
    return experiment.experiment_id


def search_runs_everywhere(filter_string: str, experiment: str) -> list[Any]:
    """Runs matching `filter_string` (any status) in every experiment of the tracking store, newest
    first: a run may sit in another experiment than `experiment` (older versions of this package
    put some in "Default"). On Databricks, where a workspace holds far too many experiments to
    search them all, only `experiment` is searched (its runs never land elsewhere: see
    `use_experiment`)."""
    import mlflow
    from mlflow.entities import ViewType

    c = client()
    if mlflow.get_tracking_uri().startswith("databricks"):
        found = c.get_experiment_by_name(experiment)
        ids = [found.experiment_id] if found is not None else []
    else:
        ids = [e.experiment_id for e in _all_pages(c.search_experiments, view_type=ViewType.ALL)]
    runs: list[Any] = []
    for i in range(0, len(ids), 100):  # the REST API takes at most 100 experiments per search
        runs += _all_pages(
            c.search_runs,
            ids[i : i + 100],
            filter_string=filter_string,
            run_view_type=ViewType.ALL,
            order_by=["attributes.start_time DESC"],
        )
    runs.sort(key=lambda r: r.info.start_time or 0, reverse=True)
    return runs


def _all_pages(search: Any, *args: Any, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = search(*args, page_token=token, **kwargs)
        out += list(page)
        token = page.token
        if not token:
            return out


def _ensure_workspace_dir(path: str) -> None:
    # A Databricks experiment path needs its parent folder to exist. Best effort: on a cluster the
    # SDK authenticates from the runtime; where it cannot, set_experiment reports the real error.
    try:
        from databricks.sdk import WorkspaceClient

        WorkspaceClient().workspace.mkdirs(path)
    except Exception as exc:  # noqa: BLE001 - any failure here is reported by set_experiment
        print(f"note: could not create workspace folder {path}: {exc}")


@dataclass(frozen=True)
class ModelRef:
    uri: str
    name: str = ""
    version: str = ""
    alias: str = ""
    run_id: str = ""


def parse_model_uri(uri: str, param: str = "model") -> ModelRef:
    uri = uri.strip()
    if m := _MODELS_VERSION.match(uri):
        return ModelRef(uri, name=m["name"], version=m["version"])
    if m := _MODELS_ALIAS.match(uri):
        return ModelRef(uri, name=m["name"], alias=m["alias"])
    if m := _RUNS.match(uri):
        return ModelRef(uri, run_id=m["run_id"])
    raise ParamError(
        f"parameter {param!r} must be a model URI: models:/NAME/VERSION, models:/NAME@ALIAS or "
        f"runs:/RUN_ID/model; got {uri!r}"
    )


def qualify_model_uri(ctx: Context, uri: str) -> str:
    """Give a bare registered-model name its Unity Catalog catalog and schema: a spec writes
    models:/sentiment_classifier@champion once, and on Databricks that model is
    <catalog>.<schema>.sentiment_classifier. Names that already have dots, and runs:/ URIs, are
    left alone."""
    ref = parse_model_uri(uri)
    if not ref.name or "." in ref.name or not ctx.uc_catalog:
        return uri
    full = registered_name(ctx, ref.name)
    return "models:/" + full + uri.strip()[len("models:/") + len(ref.name) :]


def log_input_retrying(log_input: Any, dataset: Any, context: str, attempts: int = 5) -> None:
    """Log a dataset input, riding out the race between parallel train stages that log the same
    dataset at the same moment: MLflow checks whether the dataset exists, then inserts it, and the
    loser of the race gets "UNIQUE constraint failed: datasets...". On retry the dataset exists and
    is reused. Any other error is raised at once."""
    import random
    import time

    from mlflow.exceptions import MlflowException

    for attempt in range(1, attempts + 1):
        try:
            log_input(dataset, context=context)
            return
        except MlflowException as exc:
            text = str(exc)
            if attempt == attempts or ("UNIQUE constraint" not in text and "Duplicate entry" not in text):
                raise
            time.sleep(random.uniform(0.05, 0.25) * attempt)


def client() -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def resolve_version(ref: ModelRef) -> ModelRef:
    """Fill in name and version: an alias is looked up in the registry; a runs:/ URI gets the
    registered version created from that run when there is exactly one."""
    if ref.version:
        return ref
    c = client()
    if ref.alias:
        mv = c.get_model_version_by_alias(ref.name, ref.alias)
        return ModelRef(ref.uri, name=ref.name, version=str(mv.version), alias=ref.alias)
    try:
        versions = c.search_model_versions(f"run_id='{ref.run_id}'")
    except Exception:  # noqa: BLE001 - some registries cannot search by run; the version is optional
        versions = []
    if len(versions) == 1:
        return ModelRef(ref.uri, name=versions[0].name, version=str(versions[0].version), run_id=ref.run_id)
    return ref


def allow_model_loading() -> None:
    """MLflow refuses to deserialise models (pickle and skops alike) outside Databricks unless
    MLFLOW_ALLOW_PICKLE_DESERIALIZATION is true; log_model also re-loads the model to check its
    input example. These models come from the pipeline's own registry, so we allow it unless the
    environment explicitly says otherwise."""
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


def load_model(uri: str) -> Any:
    """Load a scikit-learn model logged by the train stage (see `allow_model_loading`)."""
    allow_model_loading()
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(uri)
    if not hasattr(model, "predict_proba"):
        raise ParamError(f"model {uri} has no predict_proba; pipectl models must give probabilities")
    return model


def get_alias_version(name: str, alias: str) -> str | None:
    """The version an alias points to, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
