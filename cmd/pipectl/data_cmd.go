package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/pipectl/pipectl/internal/inspect"
)

// DataCmd groups commands about a pipeline's input data.
type DataCmd struct {
	Inspect DataInspectCmd `cmd:"" help:"Look at a CSV file as the data stage reads it: encoding, delimiter, header, text and label columns, labels; print the pipectl run command that uses it."`
}

// DataInspectCmd inspects a raw CSV file.
type DataInspectCmd struct {
	File     string `arg:"" help:"The CSV file."`
	Pipeline string `default:"sentiment" help:"Pipeline of the printed command."`
	Stage    string `default:"data" help:"Data stage of the printed command."`
	DataName string `name:"data-name" placeholder:"NAME" help:"data_name of the printed command (default: from the file name)."`
	JSON     bool   `name:"json" help:"Print the report as JSON, with the parameters and the command."`
	CUE      bool   `name:"cue" help:"Print only a CUE data stage that reads the file, for a new pipeline."`
}

// inspectJSON is the --json output: the report plus how to use it.
type inspectJSON struct {
	*inspect.Report
	Params  map[string]string `json:"params"`
	Command []string          `json:"command"`
}

// Run prints the report (stdout) and exits 1 when the data stage would
// refuse the file as it is.
func (c *DataInspectCmd) Run(app *App) error {
	path := c.File
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		path = filepath.Join(wd, path)
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		if err == nil {
			return invalidf("%s: a directory, not a CSV file", c.File)
		}
		return invalidf("%s: %v", c.File, unwrapPathError(err))
	}
	rep, err := inspect.File(path)
	if err != nil {
		fmt.Fprintf(app.Stderr, "pipectl: %v\n", err)
		return alreadyPrinted(exitRunFailed)
	}
	rep.Path = c.File
	name := c.DataName
	if name == "" {
		name = inspect.DataName(path)
	}
	params := rep.DataParams(app.sourcePath(path), name)
	args := inspect.RunArgs(c.Pipeline, c.Stage, params)
	switch {
	case c.JSON:
		out := inspectJSON{Report: rep, Params: map[string]string{}, Command: append([]string{"pipectl"}, args...)}
		for _, p := range params {
			out.Params[p.Name] = p.Value
		}
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	case c.CUE:
		b, err := inspect.CUEStage(c.Stage, params)
		if err != nil {
			return err
		}
		app.Stdout.Write(b)
	default:
		writeInspect(app.Stdout, rep, args)
	}
	if rep.HasErrors() {
		fmt.Fprintf(app.Stderr, "pipectl: %s: the data stage would refuse this file as it is: fix the errors above first\n", c.File)
		return alreadyPrinted(exitRunFailed)
	}
	return nil
}

// sourcePath is how a spec names a file: relative to the project root
// when it is inside it (the data stage resolves it there), else absolute.
func (a *App) sourcePath(abs string) string {
	if rel, err := filepath.Rel(a.Root, abs); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return abs
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func writeInspect(w io.Writer, r *inspect.Report, args []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s (%d bytes, %d data rows)\n", r.Path, r.Bytes, r.Rows)
	enc := r.Encoding
	if r.BOM != "" {
		enc += " (byte order mark: " + r.BOM + ")"
	}
	fmt.Fprintf(tw, "encoding\t%s\n", enc)
	fmt.Fprintf(tw, "delimiter\t%q\n", r.Delimiter)
	names := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		names[i] = fmt.Sprintf("%q", c.Name)
	}
	header := "no"
	if r.Header {
		header = "yes"
	}
	fmt.Fprintf(tw, "header\t%s: %s\n", header, strings.Join(names, ", "))
	for _, c := range r.Columns {
		if c.Name == r.TextColumn {
			fmt.Fprintf(tw, "text\t%q (%.0f characters on average)\n", c.Name, c.MeanChars)
		}
	}
	if r.LabelColumn != "" {
		fmt.Fprintf(tw, "label\t%q (%d values)\n", r.LabelColumn, len(r.Labels))
		for _, l := range r.Labels {
			fmt.Fprintf(tw, "\t  %q\t%d\n", l.Value, l.Count)
		}
	}
	tw.Flush()
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems")
		for _, p := range r.Problems {
			kind := "warning"
			if p.Error {
				kind = "error"
			}
			fmt.Fprintf(w, "  %s: %s\n", kind, p.Message)
		}
	}
	fmt.Fprintln(w, "\nrun the pipeline on it:")
	fmt.Fprintln(w, "  "+inspect.ShellCommand(append([]string{"pipectl"}, args...)...))
}
