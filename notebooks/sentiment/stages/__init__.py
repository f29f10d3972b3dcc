"""One module per stage type. Each exposes `WIDGETS` (every parameter the notebook declares, with
its default) and `run(params) -> StageResult`, where `params` maps names to the raw strings read
with `dbutils.widgets.get`."""
