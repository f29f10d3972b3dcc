"""The evaluate stage: score candidate models on one split, pick the best, compare it with the
current champion and move the aliases (docs/STAGES.md, "evaluate").

Decision rules:
- The best candidate is the one with the highest `metric`; ties go to the earlier candidate.
- `challenger` is set on the best candidate.
- No champion yet: the best candidate becomes champion (decision `first`).
- Otherwise the champion is scored on the same split; `champion` moves to the candidate only when
  candidate_score - champion_score > 0 and >= min_delta (decision `promoted`), else it stays
  (`kept`). A candidate that already is the champion is `kept`.
- A tie (candidates with the same best score, or a candidate scoring exactly the champion's) is
  explained in the output `tie`, present only then: which rule decided (`tie_note`).
- A champion belongs to one dataset: one trained on another `data_name` or another label set is
  not compared with (an error that says what to do) unless `allow_champion_from_other_data`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .. import params as P
from ..context import CONTEXT_WIDGETS, Context
from ..result import StageResult

WIDGETS: dict[str, str] = {
    "candidates": "[]",
    "data_name": "financial_news",
    "data_version": "v1",
    "split": "test",
    "metric": "f1_macro",
    "min_delta": "0.005",
    "allow_champion_from_other_data": "false",
    "alias": "champion",
    "challenger_alias": "challenger",
    **CONTEXT_WIDGETS,
}


#: The default `min_delta`: a noise floor. Retraining one configuration with another seed, or
#: scoring it on a resampled test split of a few thousand rows, moves macro-F1 by about 0.002
#: either way; a champion should not flip on that (docs/STAGES.md, "evaluate").
DEFAULT_MIN_DELTA = 0.005


@dataclass(frozen=True)
class EvaluateParams:
    candidates: list[str]
    data_name: str
    data_version: str
    split: str
    metric: str
    min_delta: float
    allow_champion_from_other_data: bool
    alias: str
    challenger_alias: str

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> EvaluateParams:
        from ..metrics import RANKING_METRICS
        from ..tracking import parse_model_uri

        candidates = P.json_value(raw, "candidates", default=[])
        if isinstance(candidates, str):
            candidates = [candidates]
        if (
            not isinstance(candidates, list)
            or not candidates
            or not all(isinstance(c, str) and c for c in candidates)
        ):
            raise P.ParamError(
                "parameter 'candidates' must be a non-empty JSON list of model URIs, got "
                f"{P.get(raw, 'candidates')!r}"
            )
        for uri in candidates:
            parse_model_uri(uri, "candidates")
        alias = P.required(raw, "alias")
        challenger = P.required(raw, "challenger_alias")
        if alias == challenger:
            raise P.ParamError(f"parameters 'alias' and 'challenger_alias' are both {alias!r}")
        return cls(
            candidates=list(dict.fromkeys(candidates)),  # a candidate listed twice counts once
            data_name=P.segment(raw, "data_name"),
            data_version=P.segment(raw, "data_version"),
            split=P.segment(raw, "split"),
            metric=P.choice(raw, "metric", RANKING_METRICS, "f1_macro"),
            min_delta=P.number(raw, "min_delta", DEFAULT_MIN_DELTA, low=0, low_inclusive=True),
            allow_champion_from_other_data=P.boolean(raw, "allow_champion_from_other_data", False),
            alias=alias,
            challenger_alias=challenger,
        )


def run(raw: Mapping[str, str]) -> StageResult:
    raw = {**WIDGETS, **raw}  # a direct call may leave parameters out: use the widget defaults
    ctx = Context.from_params(raw)
    p = EvaluateParams.parse(raw)
    return evaluate(p, ctx)


def evaluate(p: EvaluateParams, ctx: Context) -> StageResult:
    from ..dataset import load_split, load_version

    version = load_version(ctx.data_root, p.data_name, p.data_version)
    df = load_split(version, p.split)
    texts, labels = df["text"].tolist(), df["label"].tolist()
    print(
        f"scoring {len(p.candidates)} candidate(s) on {p.data_name}/{p.data_version} {p.split} "
        f"({len(df)} rows) by {p.metric}"
    )

    import mlflow

    from .. import metrics as M
    from .. import tracking as T

    T.configure(ctx)

    classes_of: dict[str, list[str]] = {}

    def score(uri: str) -> dict[str, float]:
        model = T.load_model(uri)
        y_pred, proba, classes = M.predict(model, texts)
        classes_of[uri] = sorted(classes)
        return M.compute(labels, y_pred, proba, classes)["scalars"]

    refs = [T.resolve_version(T.parse_model_uri(uri, "candidates")) for uri in p.candidates]
    scores: list[dict[str, float]] = []
    for ref in refs:
        if not ref.name or not ref.version:
            raise P.ParamError(
                f"candidate {ref.uri} is not a registered model version; evaluate moves registry "
                "aliases, so candidates must be models:/NAME/VERSION (or @ALIAS) URIs"
            )
        scores.append(score(ref.uri))
        print(f"  {ref.name} v{ref.version}: {p.metric}={scores[-1][p.metric]:.4f}")

    best_i = max(range(len(refs)), key=lambda i: (scores[i][p.metric], -i))
    best, best_scores = refs[best_i], scores[best_i]
    name, candidate_score = best.name, best_scores[p.metric]
    client = T.client()
    champion_version = T.get_alias_version(name, p.alias)

    champion_score: float | None = None
    if champion_version is None:
        decision, new_champion = "first", best.version
    elif champion_version == best.version:
        decision, new_champion, champion_score = "kept", champion_version, candidate_score
    else:
        same = [
            s for r, s in zip(refs, scores, strict=True) if r.name == name and r.version == champion_version
        ]
        champion_uri = f"models:/{name}/{champion_version}"
        if not p.allow_champion_from_other_data:
            check_same_dataset(p, name, champion_version, champion_uri, classes_of[best.uri])
        champion_scores = same[0] if same else score(champion_uri)
        champion_score = champion_scores[p.metric]
        delta = candidate_score - champion_score
        promote = delta > 0 and delta >= p.min_delta
        decision, new_champion = ("promoted", best.version) if promote else ("kept", champion_version)
    # Without a champion there is nothing to compare with: no champion_score and no delta.
    delta = None if champion_score is None else candidate_score - champion_score
    tie = tie_note(
        p.metric,
        [(r.version, s[p.metric]) for r, s in zip(refs, scores, strict=True)],
        best.version,
        champion_version if champion_version != best.version else None,
        champion_score,
        p.min_delta,
    )
    if tie:
        print(tie)

    client.set_registered_model_alias(name, p.challenger_alias, best.version)
    if new_champion != champion_version:
        client.set_registered_model_alias(name, p.alias, new_champion)
    print(
        f"decision: {decision}; {p.alias} = {name} v{new_champion} "
        f"(candidate v{best.version} {p.metric}={candidate_score:.4f}"
        + (f", champion v{champion_version} {champion_score:.4f}" if champion_score is not None else "")
        + f", min_delta={p.min_delta:g})"
    )

    T.use_experiment(ctx, T.short_name(name))
    tags = {**ctx.tags(), "decision": decision, "data_name": p.data_name, "data_version": p.data_version}
    with mlflow.start_run(run_name=f"evaluate-{p.split}", tags=tags):
        mlflow.log_params(
            {
                "candidates": json.dumps(p.candidates),
                "data_name": p.data_name,
                "data_version": p.data_version,
                "data_manifest_sha256": version.sha256,
                "split": p.split,
                "metric": p.metric,
                "min_delta": p.min_delta,
                "allow_champion_from_other_data": p.allow_champion_from_other_data,
                "alias": p.alias,
                "challenger_alias": p.challenger_alias,
                "model_name": name,
                "candidate_version": best.version,
                "champion_version_before": champion_version or "none",
                "champion_version_after": new_champion,
                "decision": decision,
            }
        )
        logged = {"candidate_score": candidate_score}
        if champion_score is not None and delta is not None:
            logged.update(champion_score=champion_score, delta=delta)
        for ref, s in zip(refs, scores, strict=True):
            logged[f"{p.metric}_{M.metric_key(T.short_name(ref.name))}_v{ref.version}"] = s[p.metric]
        mlflow.log_metrics(logged)
        mlflow.log_dict(
            {
                "decision": decision,
                "metric": p.metric,
                "min_delta": p.min_delta,
                "candidates": [
                    {"uri": r.uri, "name": r.name, "version": r.version, "scores": s}
                    for r, s in zip(refs, scores, strict=True)
                ],
                "champion_before": champion_version,
                "champion_after": new_champion,
                "champion_score": champion_score,
                "tie": tie,
            },
            "decision.json",
        )

    metrics = {"candidate_score": candidate_score}
    if champion_score is not None and delta is not None:
        metrics.update(champion_score=champion_score, delta=delta)
    outputs = {
        "model_name": name,
        "model_version": new_champion,
        "model_uri": f"models:/{name}/{new_champion}",
        "decision": decision,
        "candidate_uri": f"models:/{name}/{best.version}",
        "candidate_version": best.version,
    }
    if tie:
        outputs["tie"] = tie
    return StageResult(outputs=outputs, metrics=metrics)


def tie_note(
    metric: str,
    scored: list[tuple[str, float]],
    best: str,
    champion: str | None,
    champion_score: float | None,
    min_delta: float,
) -> str:
    """One sentence per tie that decided the outcome, or "" when there was none: candidates
    (version, score, in the listed order) sharing the best score, and a candidate scoring exactly
    what the champion (another version) scores."""
    import math

    def same(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-12)

    top = dict(scored)[best]
    notes = []
    tied = list(dict.fromkeys(v for v, score in scored if same(score, top)))
    if len(tied) > 1:
        notes.append(
            f"tie on {metric} {top:.4f} between versions {', '.join(tied)}: candidate chosen by "
            f"the first-listed rule (version {best})"
        )
    if champion is not None and champion_score is not None and same(champion_score, top):
        notes.append(
            f"tie with champion version {champion} on {metric} {top:.4f}: champion kept (a "
            f"candidate must score higher, by at least min_delta {min_delta:g})"
        )
    return "; ".join(notes)


class OtherDatasetError(P.ParamError):
    """The champion was trained on another dataset than the one evaluated."""


def check_same_dataset(
    p: EvaluateParams, name: str, champion_version: str, champion_uri: str, candidate_labels: list[str]
) -> None:
    """Refuse to compare with a champion trained on another `data_name` or label set: its score on
    this split means nothing (a 2-class model scores near 0 on 3 classes), and promoting over it
    would hand one dataset's champion alias to another's model.

    What the champion was trained on comes from its version's tags (`data_name`, `labels`, set by
    the train stage); the label set of a version registered before the `labels` tag existed comes
    from the model itself."""
    from .. import tracking as T
    from .train import TAG_LABELS

    tags = T.client().get_model_version(name, champion_version).tags or {}
    champion_data = tags.get("data_name")
    if TAG_LABELS in tags:
        champion_labels = sorted(json.loads(tags[TAG_LABELS]))
    else:
        champion_labels = sorted(str(c) for c in T.load_model(champion_uri).classes_)
    problems = []
    if champion_data != p.data_name:
        problems.append(
            f"data_name {champion_data!r}"
            if champion_data
            else "an unknown data_name (its version has no data_name tag)"
        )
    if champion_labels != sorted(candidate_labels):
        problems.append(f"labels {champion_labels}")
    if not problems:
        return
    short = T.short_name(name)
    raise OtherDatasetError(
        f"the champion of {name} (version {champion_version}, alias {p.alias!r}) was trained on "
        f"{' and '.join(problems)}; this evaluation is on data_name {p.data_name!r} with labels "
        f"{sorted(candidate_labels)}. A champion belongs to one dataset. Give this dataset a model "
        f'name of its own (e.g. model_name: "{p.data_name}_{short}" in its train stages), or, '
        "to compare with that champion anyway, set allow_champion_from_other_data: true in this "
        "evaluate stage"
    )
