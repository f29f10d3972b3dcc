// Package pyenv manages the Python virtualenvs pipectl runs notebooks in.
//
// [Ensure] returns a virtualenv at <dir>/venv-<key>, where the key hashes
// the requirements file's content and the interpreter (implementation,
// version, real path), so that changing either builds a new venv and
// nothing else does. The first call creates it with `python -m venv` and
// `pip install -r`, reporting every step and pip's output through a
// callback; later calls take a fast path that only reads a marker file.
//
// The marker is written last, atomically, so a venv without it is one a
// crash left half-built: it is removed and built again. A file lock makes
// creation safe when several stages or pipectl processes ask at once: one
// builds, the others wait and then reuse it.
package pyenv
