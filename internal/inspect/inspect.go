package inspect

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// Report is what Inspect found. Its JSON form is `pipectl data inspect
// --json` (docs/STAGES.md, "data inspect").
type Report struct {
	Path  string `json:"path"`
	Bytes int    `json:"bytes"`
	// Encoding is the data stage's encoding parameter that reads the file:
	// "utf-8" (also for a UTF-8 byte order mark, which the stage drops),
	// "utf-16", "utf-16-le", "utf-16-be", "cp1252" or "latin-1".
	Encoding string `json:"encoding"`
	// BOM names the byte order mark the file starts with: "utf-8",
	// "utf-16-le", "utf-16-be" or "".
	BOM string `json:"bom"`
	// Delimiter is the field separator: ",", ";", "\t" or "|".
	Delimiter string `json:"delimiter"`
	// Header says whether the first row names the columns (the data stage
	// needs it to).
	Header  bool     `json:"header"`
	Columns []Column `json:"columns"`
	// Rows counts the data rows (after the header).
	Rows int `json:"rows"`
	// TextColumn and LabelColumn are the likely text and label columns; ""
	// when none fits.
	TextColumn  string `json:"text_column"`
	LabelColumn string `json:"label_column"`
	// Labels are the label column's values with their counts, most
	// frequent first ("" counts the empty labels).
	Labels   []Label   `json:"labels"`
	Problems []Problem `json:"problems"`
}

// Column describes one column of the file.
type Column struct {
	Name string `json:"name"`
	// Distinct counts the distinct non-empty values.
	Distinct int `json:"distinct"`
	Empty    int `json:"empty"`
	// MeanChars is the mean length of its values, in characters.
	MeanChars float64 `json:"mean_chars"`
}

// Label is one value of the label column and how many rows carry it.
type Label struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Problem is something the data stage would refuse (Error) or quietly
// change (a warning: rows dropped, classes split).
type Problem struct {
	Error   bool   `json:"error"`
	Message string `json:"message"`
}

// MissingLabels are the labels that spell "no value" and that the data
// stage refuses: notebooks/sentiment/csvio.py's MISSING_LABELS, compared
// lower-cased and trimmed (a test keeps the two lists equal).
var MissingLabels = []string{"nan", "na", "n/a", "#n/a", "null", "none", "<na>", "nat"}

// Delimiters are the separators Inspect recognises, in order of preference
// when several parse the file equally well.
var Delimiters = []string{",", ";", "\t", "|"}

// maxLabels is the most distinct values a label column may have.
const maxLabels = 50

// File inspects the CSV file at path.
func File(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Bytes(path, b)
}

// Bytes inspects the CSV content b read from path.
func Bytes(path string, b []byte) (*Report, error) {
	r := &Report{Path: path, Bytes: len(b), Columns: []Column{}, Labels: []Label{}, Problems: []Problem{}}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: the file is empty; expected a header row, then one row per text", path)
	}
	for _, magic := range []struct{ prefix, what string }{
		{"\x1f\x8b", "gzip-compressed: decompress it first"},
		{"PK\x03\x04", "a zip archive (or an Excel workbook): export it as CSV"},
		{"PAR1", "Parquet, not CSV"},
	} {
		if bytes.HasPrefix(b, []byte(magic.prefix)) {
			return nil, fmt.Errorf("%s: the file is %s", path, magic.what)
		}
	}
	text, err := r.decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	r.Delimiter = sniffDelimiter(text)
	records, err := r.parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("%s: the file has no rows; expected a header row, then one row per text", path)
	}
	r.describe(records)
	return r, nil
}

// decode detects the encoding and returns the text without a BOM.
func (r *Report) decode(b []byte) (string, error) {
	var enc encoding.Encoding
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		r.Encoding, r.BOM = "utf-8", "utf-8"
		b = b[3:]
		if !utf8.Valid(b) {
			return "", fmt.Errorf("the file starts with a UTF-8 byte order mark but is not valid UTF-8 (line %d)", lineOf(b, invalidUTF8(b)))
		}
		return string(b), nil
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		r.Encoding, r.BOM = "utf-16", "utf-16-le"
		enc = unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM)
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		r.Encoding, r.BOM = "utf-16", "utf-16-be"
		enc = unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM)
	case len(b) >= 4 && b[1] == 0 && b[3] == 0 && b[0] != 0:
		r.Encoding = "utf-16-le"
		enc = unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)
	case len(b) >= 4 && b[0] == 0 && b[2] == 0 && b[1] != 0:
		r.Encoding = "utf-16-be"
		enc = unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM)
	case utf8.Valid(b):
		r.Encoding = "utf-8"
		return string(b), nil
	default:
		// Not UTF-8: a single-byte Western encoding. Bytes 0x80-0x9F are
		// control characters in latin-1 and letters and punctuation (€, “,
		// —) in cp1252, so they decide.
		r.Encoding, enc = "latin-1", charmap.ISO8859_1
		for _, c := range b {
			if c >= 0x80 && c <= 0x9F && c != 0x81 && c != 0x8D && c != 0x8F && c != 0x90 && c != 0x9D {
				r.Encoding, enc = "cp1252", charmap.Windows1252
				break
			}
		}
		first := invalidUTF8(b)
		r.warn("line %d: not UTF-8 (byte 0x%02X); read as %s, which the --set flags below say", lineOf(b, first), b[first], r.Encoding)
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return "", fmt.Errorf("cannot decode as %s: %v", r.Encoding, err)
	}
	if i := bytes.IndexByte(out, 0); i >= 0 {
		return "", fmt.Errorf("line %d contains a NUL character: not a text CSV file", lineOf(out, i))
	}
	return string(out), nil
}

func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return 0
}

func lineOf(b []byte, offset int) int { return bytes.Count(b[:offset], []byte{'\n'}) + 1 }

// sniffDelimiter picks the delimiter that splits the first records into
// the same number (above one) of fields, the most fields winning.
func sniffDelimiter(text string) string {
	sample := text
	if len(sample) > 64<<10 {
		sample = sample[:64<<10]
		if i := strings.LastIndexByte(sample, '\n'); i > 0 {
			sample = sample[:i+1]
		}
	}
	best, bestFields := ",", 1
	for _, d := range Delimiters {
		cr := csv.NewReader(strings.NewReader(sample))
		cr.Comma = []rune(d)[0]
		cr.FieldsPerRecord = -1
		cr.LazyQuotes = true
		fields, consistent := 0, true
		for n := 0; n < 50; n++ {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				consistent = false
				break
			}
			if n == 0 {
				fields = len(rec)
			} else if len(rec) != fields {
				consistent = false
				break
			}
		}
		if consistent && fields > bestFields {
			best, bestFields = d, fields
		}
	}
	return best
}

// parse reads every record strictly, as the data stage does.
func (r *Report) parse(text string) ([][]string, error) {
	cr := csv.NewReader(strings.NewReader(text))
	cr.Comma = []rune(r.Delimiter)[0]
	cr.FieldsPerRecord = -1
	var records [][]string
	badRows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("line %d: not valid CSV: %v; double quotes inside a quoted field must be doubled (\"\")", pe.StartLine, pe.Err)
			}
			return nil, err
		}
		if len(records) > 0 && len(rec) != len(records[0]) {
			if badRows == 0 {
				line, _ := cr.FieldPos(0)
				r.fail("data row %d (line %d) has %d field(s), the header %d: quote fields that contain %s", len(records), line, len(rec), len(records[0]), delimiterName(r.Delimiter))
			}
			badRows++
			continue
		}
		records = append(records, rec)
	}
	if badRows > 1 {
		r.fail("%d rows in all have a field count other than the header's", badRows)
	}
	return records, nil
}

func delimiterName(d string) string {
	switch d {
	case "\t":
		return "tabs"
	case ",":
		return "commas"
	}
	return fmt.Sprintf("'%s'", d)
}

// textNames and labelNames are column names that say what a column holds.
var (
	textNames  = regexp.MustCompile(`(?i)^(text|sentence|review|content|body|headline|title|message|tweet|comment|document|phrase)s?$`)
	labelNames = regexp.MustCompile(`(?i)^(label|sentiment|class|target|category|polarity|rating|y)s?$`)
)

// describe fills the columns, picks the text and label columns and counts
// the labels.
func (r *Report) describe(records [][]string) {
	header, data := records[0], records[1:]
	r.Rows = len(data)
	r.Header = looksLikeHeader(header, data)
	if !r.Header {
		r.fail("the first row looks like data, not column names: add a header row (e.g. text,label) first")
	}
	if len(header) < 2 {
		r.fail("the file has one column (%s): the data stage needs a text column and a label column", show(header[0]))
	}
	values := make([]map[string]int, len(header))
	for i, name := range header {
		values[i] = map[string]int{}
		chars := 0
		col := Column{Name: name}
		for _, rec := range data {
			v := rec[i]
			values[i][v]++
			chars += utf8.RuneCountInString(v)
			if strings.TrimSpace(v) == "" {
				col.Empty++
			}
		}
		col.Distinct = len(values[i])
		if _, ok := values[i][""]; ok {
			col.Distinct--
		}
		if len(data) > 0 {
			col.MeanChars = math.Round(float64(chars)/float64(len(data))*10) / 10
		}
		r.Columns = append(r.Columns, col)
	}
	if len(data) == 0 {
		r.fail("the file has a header but no data rows")
		return
	}
	label := r.pickLabel()
	text := r.pickText(label)
	if label >= 0 {
		r.LabelColumn = header[label]
		r.countLabels(values[label])
	} else if len(header) > 1 {
		r.fail("no column looks like a label (2 to %d distinct values): name it with --set data.label_column", maxLabels)
	}
	if text >= 0 {
		r.TextColumn = header[text]
		r.checkTexts(data, text)
	}
}

// looksLikeHeader: column names are short, non-empty, distinct, and none
// is a value of its column below.
func looksLikeHeader(header []string, data [][]string) bool {
	seen := map[string]bool{}
	for i, name := range header {
		n := strings.TrimSpace(name)
		if n == "" || utf8.RuneCountInString(n) > 64 || seen[n] {
			return false
		}
		seen[n] = true
		repeats := 0
		for _, rec := range data {
			if rec[i] == name {
				repeats++
			}
		}
		if repeats > 0 {
			return false
		}
	}
	return true
}

func (r *Report) pickLabel() int {
	best, bestScore := -1, 0.0
	for i, c := range r.Columns {
		named := labelNames.MatchString(strings.TrimSpace(c.Name))
		if c.Distinct < 2 || c.Distinct > maxLabels || !named && c.Distinct*2 > r.Rows+1 {
			continue
		}
		// Fewer distinct values per row is more label-like; a telling name
		// wins over that.
		score := 1 - float64(c.Distinct)/float64(r.Rows+1)
		if named {
			score += 10
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

func (r *Report) pickText(label int) int {
	best, bestScore := -1, 0.0
	for i, c := range r.Columns {
		if i == label {
			continue
		}
		score := c.MeanChars
		if textNames.MatchString(strings.TrimSpace(c.Name)) {
			score += 1e6
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

func (r *Report) countLabels(counts map[string]int) {
	for v, n := range counts {
		r.Labels = append(r.Labels, Label{Value: v, Count: n})
	}
	sort.Slice(r.Labels, func(i, j int) bool {
		a, b := r.Labels[i], r.Labels[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Value < b.Value
	})
	missing := map[string]bool{}
	for _, m := range MissingLabels {
		missing[m] = true
	}
	byFold := map[string][]Label{}
	var folds []string
	for _, l := range r.Labels {
		key := strings.ToLower(strings.TrimSpace(l.Value))
		switch {
		case key == "":
			r.warn("%d row(s) have an empty label in column %s: the data stage drops them", l.Count, show(r.LabelColumn))
			continue
		case missing[key]:
			r.fail("%d row(s) have the label %s in column %s, which spells a missing value: the data stage refuses them; give those rows their label, or leave it empty to drop them", l.Count, show(l.Value), show(r.LabelColumn))
			continue
		}
		if byFold[key] == nil {
			folds = append(folds, key)
		}
		byFold[key] = append(byFold[key], l)
	}
	classes := 0
	for _, key := range folds {
		group := byFold[key]
		classes += len(group)
		if len(group) > 1 {
			parts := make([]string, len(group))
			for i, l := range group {
				parts[i] = fmt.Sprintf("%s (%d)", show(l.Value), l.Count)
			}
			r.warn("labels %s differ only in case or spaces: the data stage keeps them as %d classes; spell them one way in the file", strings.Join(parts, ", "), len(group))
		}
		for _, l := range group {
			if l.Count < 3 {
				r.warn("label %s has %d row(s): train, test and holdout each need one, so the data stage refuses it", show(l.Value), l.Count)
			}
		}
	}
	if classes == 1 {
		r.fail("column %s has one class: a classifier needs at least two", show(r.LabelColumn))
	}
}

func (r *Report) checkTexts(data [][]string, text int) {
	replaced, first, empty := 0, 0, 0
	for i, rec := range data {
		if strings.ContainsRune(rec[text], utf8.RuneError) {
			if replaced == 0 {
				first = i + 1
			}
			replaced++
		}
		if strings.TrimSpace(rec[text]) == "" {
			empty++
		}
	}
	if replaced > 0 {
		r.warn("%d text(s) contain U+FFFD, a character lost when the file was re-encoded earlier (first in data row %d): fix the export if you can", replaced, first)
	}
	if empty > 0 {
		r.warn("%d row(s) have an empty text in column %s: the data stage drops them", empty, show(r.Columns[text].Name))
	}
}

func (r *Report) fail(format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Error: true, Message: fmt.Sprintf(format, args...)})
}

func (r *Report) warn(format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Message: fmt.Sprintf(format, args...)})
}

// HasErrors says whether the data stage would refuse the file as it is.
func (r *Report) HasErrors() bool {
	for _, p := range r.Problems {
		if p.Error {
			return true
		}
	}
	return false
}

func show(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:37]) + "..."
	}
	return fmt.Sprintf("%q", s)
}

// genericStems are file names that say nothing about the data; the
// directory's name is used instead.
var genericStems = map[string]bool{"data": true, "dataset": true, "train": true, "input": true, "raw": true, "all": true}

var unsafeName = regexp.MustCompile(`[^a-z0-9_-]+`)

// DataName proposes a data_name (a safe path segment) for the file at path:
// its name without extension, or its directory's when the name is generic.
func DataName(path string) string {
	base := filepath.Base(path)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	if genericStems[strings.ToLower(stem)] {
		if dir := filepath.Base(filepath.Dir(path)); dir != "." && dir != string(filepath.Separator) {
			stem = dir
		}
	}
	name := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(stem), "_"), "_-")
	if name == "" {
		return "data"
	}
	return name
}

// Param is one parameter of the data stage.
type Param struct{ Name, Value string }

// DelimiterParam is the data stage's delimiter parameter for a separator:
// the separator itself, or "tab" (schemas/params.cue).
func DelimiterParam(d string) string {
	if d == "\t" {
		return "tab"
	}
	return d
}

// DataParams are the data stage parameters that read the file as
// inspected: source, data_name, the text and label columns, and encoding
// and delimiter when they are not the defaults (utf-8, comma). They are the --set flags of the
// printed command, the CUE snippet and what `pipectl init --data` writes.
func (r *Report) DataParams(source, dataName string) []Param {
	ps := []Param{{"data_name", dataName}, {"source", source}}
	if r.TextColumn != "" {
		ps = append(ps, Param{"text_column", r.TextColumn})
	}
	if r.LabelColumn != "" {
		ps = append(ps, Param{"label_column", r.LabelColumn})
	}
	if r.Encoding != "utf-8" {
		ps = append(ps, Param{"encoding", r.Encoding})
	}
	if r.Delimiter != "," {
		ps = append(ps, Param{"delimiter", DelimiterParam(r.Delimiter)})
	}
	return ps
}
