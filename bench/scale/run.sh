#!/usr/bin/env bash
# B5 scale benchmark: a million generated rows through data -> train (logistic
# regression and naive Bayes, in parallel) -> inference with the local
# executor, measured per run: end-to-end wall time, per-stage wall time and
# rows/s, peak memory of the whole process tree, and the inference stage's
# throughput against a bare pipeline.predict loop on the same model and rows,
# run right after it. See docs/BENCHMARKS.md.
#
#   bench/scale/run.sh [--smoke] [--runs N] [--rows N]
#
# --smoke: 20,000 rows, one run (seconds once the venv exists); what
# `make bench-smoke` runs so the suite never rots.
#
# Everything goes to $PIPECTL_BENCH_DIR/scale (default .pipectl/bench/scale in
# the repository, which git ignores): the pipectl binary, its state (venv,
# MLflow store, runs), the generated CSV (reused while the generator, rows and
# seed are unchanged), the data versions and predictions of the runs (removed
# after each run but the last) and results/<timestamp>/ with one JSON file per
# measurement and summary.md. stdout: the summary table; stderr: progress.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$repo/bench/scale
rows=1000000
runs=3
smoke=false
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=true rows=20000 runs=1 ;;
	--runs) runs=$2; shift ;;
	--rows) rows=$2; shift ;;
	-h | --help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

work=${PIPECTL_BENCH_DIR:-$repo/.pipectl/bench}/scale
state=$work/state
suffix=
$smoke && suffix=-smoke
results=$work/results/$(date -u +%Y%m%dT%H%M%SZ)$suffix
mkdir -p "$results" "$work/data"
log() { echo "bench/scale: $*" >&2; }

log "building pipectl"
(cd "$repo" && go build -o "$work/pipectl" ./cmd/pipectl)
pipectl=$work/pipectl
log "managed venv (built on first use)"
py=$("$pipectl" -C "$repo" --state-dir "$state" dev python)

# The generated CSV is named after what determines its bytes.
gen_key=$(sha256sum "$here/generate.py" | cut -c1-12)
csv=$work/data/imdb-$rows-$gen_key.csv
if [ ! -f "$csv" ]; then
	log "generating $rows rows"
	rm -f "$work"/data/imdb-"$rows"-*.csv
	status=0
	"$py" "$here/generate.py" --rows "$rows" --out "$csv" || status=$?
	# 2: the IMDB reviews are not here (a runner without ../shared). The
	# smoke run only keeps the suite from rotting: say so and go on.
	if [ "$status" = 2 ] && $smoke; then
		log "B5 skipped: no IMDB reviews to generate from (../shared/data/imdb-50k; set PIPECTL_SHARED_DATA)"
		exit 0
	fi
	[ "$status" = 0 ] || exit "$status"
fi

data_root=$repo/.pipectl/data
prev_version= prev_predictions=
for i in $(seq 1 "$runs"); do
	version=bench-$(date -u +%Y%m%d%H%M%S)-$i
	log "run $i/$runs: data version $version (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	uptime_before=$(cut -d' ' -f1-3 /proc/loadavg)
	"$py" "$here/memwatch.py" --out "$results/run-$i.mem.json" -- \
		"$pipectl" -C "$repo" --state-dir "$state" run scale --specs bench/scale/specs \
		--set "data.source=$csv" --set "data.data_version=$version" --no-cache --json \
		>"$results/run-$i.events.jsonl"
	echo "{\"loadavg_before\": \"$uptime_before\", \"loadavg_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" \
		>"$results/run-$i.load.json"
	# The model and predictions of this run, from its inference stage's outputs.
	read -r model predictions < <("$py" -c 'import json, os, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] == "stage_finished" and e["stage"] == "inference":
        print(e["outputs"]["model_uri"], os.path.dirname(e["outputs"]["predictions_path"]))' \
		"$results/run-$i.events.jsonl")
	log "run $i/$runs: bare predict loop on $model"
	# Under the same memory sampler as the run, so that both sides carry its cost.
	"$py" "$here/memwatch.py" --out "$results/run-$i.baseline.mem.json" -- \
		"$py" "$here/bare_predict.py" --state-dir "$state" --model "$model" \
		--rows "$data_root/imdb_scale/$version/holdout.parquet" --out "$results/run-$i.baseline.json"
	# Keep the last run's data and predictions for inspection; the others only cost disk.
	if [ -n "$prev_version" ]; then
		rm -rf "${data_root:?}/imdb_scale/$prev_version" "${prev_predictions:?}"
	fi
	prev_version=$version prev_predictions=$predictions
done

"$py" "$here/report.py" "$results" --rows "$rows" | tee "$results/summary.md"
log "results in $results"
