// Package spec loads pipeline specs: CUE packages unified with the embedded
// schemas ([schemas.FS]), checked beyond what CUE can say (names, needs,
// references, cycles, cron, target configuration, and the rules the table
// of stage types in the schemas declares) and decoded to Go types.
//
// Every problem becomes a [diag.Diagnostic] with the user's file, line and
// column and the field path; loading never stops at the first problem.
//
// The steps, in order:
//
//   - load: parse and build each CUE package (syntax, references)
//     Reads: files. Updates: Project.values.
//   - unify: unify with #Spec and validate (types, ranges, closed structs)
//     Reads: schema. Updates: diagnostics.
//   - complete: find required fields that are missing
//   - decode: pipelines, targets and stages as Go values
//   - check: names, one file per pipeline, needs, references, cycles,
//     schedules (including ones that never fire), durations, evaluate
//     candidates of one model, targets, and every target's resolved stage
//     parameters (encodings; with Options.CheckInputs, local input files)
//   - warn: values that look like credentials ([secret])
package spec
