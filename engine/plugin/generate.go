package plugin

// The generated code in proto/executor/v1 is committed. Regenerate it after
// editing executor.proto; buf and the protoc plugins are Go tools pinned in
// tools/go.mod, so this needs no protoc and works offline from the module cache.
//
//go:generate go tool -modfile=../../tools/go.mod buf generate proto --template proto/buf.gen.yaml
