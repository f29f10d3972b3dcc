// Package inspect looks at a raw CSV file the way the data stage will read
// it (docs/STAGES.md, "data") and says how to use it: its encoding (and
// byte order mark), delimiter and header, which columns look like the text
// and the label, the label set with counts, and what would make the data
// stage refuse or silently drop rows (case variants of one label, empty
// and missing-value labels, U+FFFD in texts).
//
// It only reads: the file is decoded once, in memory, with the standard
// library's encoding/csv and golang.org/x/text's charsets.
package inspect
