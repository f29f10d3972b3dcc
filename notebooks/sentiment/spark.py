"""The Spark session of the `spark` engine (docs/STAGES.md, "Engines").

On Databricks the session the cluster or serverless compute provides is used as is. Elsewhere a local
one is started once per process: master `local[2]` (or $PIPECTL_SPARK_MASTER; the JVM's heap
$PIPECTL_SPARK_DRIVER_MEMORY, default 2g; a JVM out of heap exits, failing the stage), Delta Lake enabled with
delta-spark's `configure_spark_with_delta_pip` (its jars come from Maven Central into an ivy cache
under the state directory the first time), the warehouse and Derby metastore under the state
directory, and the executors' Python the current interpreter. pyspark and delta-spark are in
notebooks/requirements-spark.txt, not in the pandas venv: importing this module without them raises an
error that says which venv to use.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MASTER_ENV = "PIPECTL_SPARK_MASTER"
DRIVER_MEMORY_ENV = "PIPECTL_SPARK_DRIVER_MEMORY"  # e.g. "4g"; unset: DEFAULT_DRIVER_MEMORY
# Spark's own 1g ran out of heap in the data stage at a million rows (B7, docs/BENCHMARKS.md).
DEFAULT_DRIVER_MEMORY = "2g"
STATE_ENV = "PIPECTL_STATE_DIR"
DEFAULT_MASTER = "local[2]"


class SparkUnavailableError(RuntimeError):
    """pyspark (or Java) is missing: the stage asked for engine "spark" in a venv without it."""


def state_dir() -> Path:
    """Where a local session keeps its ivy cache, warehouse and metastore: $PIPECTL_STATE_DIR (the
    local executor sets it), else the system temporary directory."""
    base = os.environ.get(STATE_ENV)
    return Path(base) if base else Path(tempfile.gettempdir()) / "pipectl-spark"


def _import_pyspark():
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(
            f'engine "spark" needs pyspark, which this Python ({sys.executable}) lacks ({exc}); '
            "the local executor builds a venv from notebooks/requirements-spark.txt for stages with "
            "engine: spark (`pipectl dev python --spark` prints it), or set engine: pandas"
        ) from None
    return SparkSession


def get_spark(app_name: str = "pipectl") -> SparkSession:
    """The active session (Databricks, or one this process started), else a new local one."""
    session_class = _import_pyspark()
    active = session_class.getActiveSession()
    if active is not None:
        return active
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        # On Databricks (classic or serverless) the builder returns the session the compute made.
        return session_class.builder.getOrCreate()
    from delta import configure_spark_with_delta_pip

    state = state_dir() / "spark"
    ivy = state / "ivy"
    warehouse = state / "warehouse"
    derby = state / "derby"
    for d in (ivy, warehouse, derby):
        d.mkdir(parents=True, exist_ok=True)
    # The Python workers run the interpreter of this process (the stage's venv).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    builder = (
        session_class.builder.appName(app_name)
        .master(os.environ.get(MASTER_ENV) or DEFAULT_MASTER)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.jars.ivy", str(ivy))
        .config("spark.sql.warehouse.dir", str(warehouse))
        # A JVM out of heap exits, so the stage fails: without it the driver hung after an
        # OutOfMemoryError in Spark's event loop (B7, a million rows, 1g) and never returned.
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={derby} -XX:+ExitOnOutOfMemoryError")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Delta's snapshot state defaults to 50 partitions: tasks of nothing on a small machine.
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    # In local mode the driver is the executor: its heap holds cached data and what is collected.
    builder = builder.config(
        "spark.driver.memory", os.environ.get(DRIVER_MEMORY_ENV) or DEFAULT_DRIVER_MEMORY
    )
    try:
        return configure_spark_with_delta_pip(builder).getOrCreate()
    except Exception as exc:  # noqa: BLE001 - Java missing or too old, Maven Central unreachable: any error
        raise SparkUnavailableError(
            f"could not start a local Spark session ({type(exc).__name__}: {str(exc).strip()[:500]}); "
            "it needs Java 17 or later on PATH (or JAVA_HOME) and, the first time, Maven Central for "
            f"the Delta jars (cached in {ivy})"
        ) from None
