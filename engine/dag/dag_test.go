package dag

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLayers(t *testing.T) {
	tests := map[string]struct {
		nodes  []string
		edges  [][2]string
		layers [][]string
		cycle  []string
	}{
		"empty":  {},
		"single": {nodes: []string{"a"}, layers: [][]string{{"a"}}},
		"sentiment shape": {
			nodes: []string{"data", "train_lr", "train_nb", "train_svc", "evaluate", "inference"},
			edges: [][2]string{
				{"data", "train_lr"}, {"data", "train_nb"}, {"data", "train_svc"},
				{"train_lr", "evaluate"}, {"train_nb", "evaluate"}, {"train_svc", "evaluate"},
				{"data", "evaluate"}, {"evaluate", "inference"}, {"data", "inference"},
			},
			layers: [][]string{{"data"}, {"train_lr", "train_nb", "train_svc"}, {"evaluate"}, {"inference"}},
		},
		"independent branches": {
			nodes:  []string{"b", "a", "c"},
			edges:  [][2]string{{"a", "c"}},
			layers: [][]string{{"a", "b"}, {"c"}},
		},
		"duplicate edges count once": {
			edges:  [][2]string{{"a", "b"}, {"a", "b"}},
			layers: [][]string{{"a"}, {"b"}},
		},
		"self cycle": {edges: [][2]string{{"a", "a"}}, cycle: []string{"a", "a"}},
		"three cycle": {
			edges: [][2]string{{"x", "a"}, {"a", "b"}, {"b", "c"}, {"c", "a"}},
			cycle: []string{"a", "b", "c", "a"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := New(tc.nodes...)
			for _, e := range tc.edges {
				g.AddEdge(e[0], e[1])
			}
			layers, err := g.Layers()
			if tc.cycle != nil {
				var ce *CycleError
				if !errors.As(err, &ce) {
					t.Fatalf("want a cycle error, got %v", err)
				}
				if diff := cmp.Diff(tc.cycle, ce.Cycle); diff != "" {
					t.Errorf("wrong cycle\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.layers, layers); diff != "" {
				t.Errorf("wrong layers\n%s", diff)
			}
		})
	}
}

func TestReachability(t *testing.T) {
	g := New()
	g.AddEdge("a", "b")
	g.AddEdge("b", "c")
	g.AddEdge("a", "d")
	if diff := cmp.Diff([]string{"b", "c", "d"}, g.Descendants("a")); diff != "" {
		t.Errorf("descendants\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, g.Ancestors("c")); diff != "" {
		t.Errorf("ancestors\n%s", diff)
	}
	sub := g.Subgraph(func(n string) bool { return n != "b" })
	if diff := cmp.Diff([]string{"a", "c", "d"}, sub.Nodes()); diff != "" {
		t.Errorf("subgraph nodes\n%s", diff)
	}
	if len(sub.Needs("c")) != 0 {
		t.Errorf("subgraph kept an edge through a removed node: %v", sub.Needs("c"))
	}
}

func TestMermaidAndDOT(t *testing.T) {
	g := New("data", "train")
	g.AddEdge("data", "train")
	got := g.Mermaid(map[string]Label{"data": {Text: "12s", Class: "succeeded"}, "train": {Class: "failed"}})
	want := `flowchart TD
    s0["data<br/>12s"]
    s1["train"]
    s0 --> s1
    class s0 succeeded
    class s1 failed
    classDef failed fill:#ffe3e3,stroke:#c92a2a
    classDef succeeded fill:#d3f9d8,stroke:#2b8a3e
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mermaid\n%s", diff)
	}
	dot := g.DOT("p", nil)
	wantDOT := "digraph \"p\" {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n    \"data\" [label=\"data\"];\n    \"train\" [label=\"train\"];\n    \"data\" -> \"train\";\n}\n"
	if diff := cmp.Diff(wantDOT, dot); diff != "" {
		t.Errorf("dot\n%s", diff)
	}
}
