"""The exit value of a stage: `{"outputs": {...}, "metrics": {...}}` (docs/STAGES.md)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

# Databricks caps a task value at 48 KiB; keep outputs well inside it.
MAX_OUTPUT_BYTES = 48 * 1024


@dataclass
class StageResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def exit_value(self) -> dict[str, Any]:
        """The JSON-ready exit value. Non-finite metrics are dropped (JSON has no NaN)."""
        for key, value in self.outputs.items():
            size = len(json.dumps(value))
            if size > MAX_OUTPUT_BYTES:
                raise ValueError(f"output {key!r} is {size} bytes; outputs must stay under 48 KiB")
        metrics = {
            k: (int(v) if isinstance(v, bool) else v)
            for k, v in self.metrics.items()
            if isinstance(v, int | float) and math.isfinite(v)
        }
        return {"outputs": dict(self.outputs), "metrics": metrics}

    def to_json(self) -> str:
        return json.dumps(self.exit_value(), allow_nan=False, sort_keys=False)
