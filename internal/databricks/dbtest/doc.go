// Package dbtest holds test helpers for the databricks executor and its
// emulator: where to find a Python interpreter, pipectl's notebook runner,
// the shared datasets, a small test project, and a started emulator.
//
// Environment (all optional):
//
//	PIPECTL_TEST_PYTHON     interpreter for notebooks (default: python3 on PATH);
//	                        the sentiment tests need one with notebooks/requirements.txt
//	PIPECTL_TEST_NOTEBOOKS  a notebooks/ directory with pipectl_runner and the
//	                        sentiment notebooks (default: <repo>/notebooks)
//	PIPECTL_TEST_DATA       the shared data directory (default: shared/data found
//	                        above the repository)
package dbtest
