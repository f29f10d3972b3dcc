package schemas

import "embed"

// FS holds the schema files (*.cue), all in CUE package "pipectl".
//
//go:embed *.cue
var FS embed.FS
