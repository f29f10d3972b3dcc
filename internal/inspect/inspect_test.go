package inspect

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The data stage's list of missing-value labels is the one definition;
// MissingLabels must say the same.
func TestMissingLabelsMatchNotebooks(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "notebooks", "sentiment", "csvio.py"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`MISSING_LABELS = frozenset\(\{([^}]*)\}\)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("MISSING_LABELS = frozenset({...}) not found in csvio.py")
	}
	var py []string
	for _, q := range regexp.MustCompile(`"([^"]*)"`).FindAllSubmatch(m[1], -1) {
		py = append(py, string(q[1]))
	}
	got := append([]string(nil), MissingLabels...)
	sort.Strings(py)
	sort.Strings(got)
	if d := cmp.Diff(py, got); d != "" {
		t.Errorf("MissingLabels differ from csvio.MISSING_LABELS (-python +go)\n%s", d)
	}
}

func TestDataName(t *testing.T) {
	tests := map[string]string{
		"/data/financial-sentiment/data.csv": "financial-sentiment",
		"raw/News Headlines 2024.csv":        "news_headlines_2024",
		"train.csv":                          "train",
		"x/Übersicht.tsv":                    "bersicht",
	}
	for path, want := range tests {
		if got := DataName(path); got != want {
			t.Errorf("DataName(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestDelimiterAndHeader(t *testing.T) {
	tests := map[string]struct {
		csv       string
		delimiter string
		header    bool
	}{
		"comma, quoted semicolons": {"text,label\n\"a; b\",x\n\"c; d\",y\n", ",", true},
		"tab":                      {"text\tlabel\na, b\tx\nc\ty\n", "\t", true},
		"pipe":                     {"text|label\na|x\nb|y\n", "|", true},
		"no header":                {"a good day,positive\nbad news,negative\nfine news,positive\n", ",", false},
	}
	for name, tc := range tests {
		r, err := Bytes("f.csv", []byte(tc.csv))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Delimiter != tc.delimiter || r.Header != tc.header {
			t.Errorf("%s: delimiter %q header %v, want %q %v", name, r.Delimiter, r.Header, tc.delimiter, tc.header)
		}
	}
}
