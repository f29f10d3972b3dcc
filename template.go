package pipectl

import "embed"

// Template is the project `pipectl init` scaffolds, with this repository's
// paths: specs/*.cue, the notebooks with the sentiment and pipectl_runner
// packages and requirements files (not their tests), and data/sample.
//
//go:embed specs/*.cue
//go:embed notebooks/*.py notebooks/requirements.txt notebooks/requirements-spark.txt notebooks/pyproject.toml
//go:embed notebooks/pipectl_runner/*.py notebooks/sentiment/*.py notebooks/sentiment/stages/*.py
//go:embed data/README.md data/sample/financial_news.csv
var Template embed.FS
