// Package cache decides whether a stage must run again.
//
// A stage's cache key is the SHA-256 of its [Components]: the stage's
// name and type;
// the content of its notebook and of the notebooks it %runs; the content of
// every local Python package or module it imports (see [Hasher.Sources]
// for exactly which files); its parameters as the notebook receives them,
// with upstream outputs and ${run.*} substituted; the executor's name and
// the target's configuration for it; and the content of the pinned
// requirements file (the nearest requirements.txt from the notebook's
// directory up to the project root); and the fingerprints of its inputs
// (files and registry references its parameters name), which the stage's
// executor reports ([Input]; [Digests] hashes local files with an on-disk
// memo). The pipeline's name is not part of the
// key: a stage of the same name with the same inputs shares its result
// across pipelines (news-data building v1 serves news's data
// stage). Notebooks must therefore not let pipectl_pipeline change what
// they produce (it is for tags and logs).
//
// The index lives in .pipectl/cache: entries/<key>.json holds the outputs,
// metrics and links a key produced, and last/<pipeline>@<target>.json the
// key each stage produced last, which `plan --explain` diffs against. Every
// file is written atomically (not synced: a cache lost in a crash costs
// reruns, never a wrong hit). A hit is only a hit when the
// executor confirms that the entry's outputs still exist (CheckOutputs);
// that is the runner's job.
package cache
