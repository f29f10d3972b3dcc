package schemas

import "embed"

// FS holds the schema files (*.cue), all in CUE package "pipectl", and
// encodings.txt: the text codecs an @pipectl(encoding) parameter may name
// (checked against Python by notebooks/tests/test_encodings_list.py).
//
//go:embed *.cue encodings.txt
var FS embed.FS
