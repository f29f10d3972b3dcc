package spec

import (
	"bytes"
	"io"
	"slices"
)

func sortStrings(s []string) { slices.Sort(s) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
