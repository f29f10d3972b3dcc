package dag

import (
	"fmt"
	"slices"
	"strings"
)

// Graph is a directed graph of named nodes. The zero value is not usable;
// call New.
type Graph struct {
	nodes []string
	index map[string]int
	// succ and pred hold edges both ways, deduplicated and sorted.
	succ map[string][]string
	pred map[string][]string
}

// New returns a graph with the given nodes, in order.
func New(nodes ...string) *Graph {
	g := &Graph{index: map[string]int{}, succ: map[string][]string{}, pred: map[string][]string{}}
	for _, n := range nodes {
		g.AddNode(n)
	}
	return g
}

// AddNode adds n if it is not there yet.
func (g *Graph) AddNode(n string) {
	if _, ok := g.index[n]; ok {
		return
	}
	g.index[n] = len(g.nodes)
	g.nodes = append(g.nodes, n)
}

// Has reports whether n is a node.
func (g *Graph) Has(n string) bool { _, ok := g.index[n]; return ok }

// AddEdge records that from must finish before to. Both nodes are added if
// missing; a repeated edge is kept once.
func (g *Graph) AddEdge(from, to string) {
	g.AddNode(from)
	g.AddNode(to)
	if !slices.Contains(g.succ[from], to) {
		g.succ[from] = insertSorted(g.succ[from], to)
		g.pred[to] = insertSorted(g.pred[to], from)
	}
}

func insertSorted(s []string, v string) []string {
	i, _ := slices.BinarySearch(s, v)
	return slices.Insert(s, i, v)
}

// Nodes returns the nodes in insertion order.
func (g *Graph) Nodes() []string { return slices.Clone(g.nodes) }

// Needs returns the direct predecessors of n, sorted.
func (g *Graph) Needs(n string) []string { return slices.Clone(g.pred[n]) }

// Dependents returns the direct successors of n, sorted.
func (g *Graph) Dependents(n string) []string { return slices.Clone(g.succ[n]) }

// Descendants returns every node reachable from n (not n itself), sorted.
func (g *Graph) Descendants(n string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(x string) {
		for _, s := range g.succ[x] {
			if !seen[s] {
				seen[s] = true
				walk(s)
			}
		}
	}
	walk(n)
	return sortedKeys(seen)
}

// Ancestors returns every node from which n is reachable (not n itself),
// sorted.
func (g *Graph) Ancestors(n string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(x string) {
		for _, p := range g.pred[x] {
			if !seen[p] {
				seen[p] = true
				walk(p)
			}
		}
	}
	walk(n)
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// CycleError names one cycle of the graph, in edge order, with its first
// node repeated at the end: a → b → a.
type CycleError struct {
	Cycle []string
}

func (e *CycleError) Error() string {
	return "cycle: " + strings.Join(e.Cycle, " → ")
}

// Cycle returns one cycle of the graph, or nil. Which cycle is deterministic:
// the search starts from nodes in sorted order.
func (g *Graph) Cycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, s := range g.succ[n] {
			switch color[s] {
			case grey:
				i := slices.Index(stack, s)
				found = append(slices.Clone(stack[i:]), s)
				return true
			case white:
				if visit(s) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range slices.Sorted(slices.Values(g.nodes)) {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return nil
}

// Layers orders the graph in topological layers: layer 0 has the nodes with
// no predecessors, layer k the nodes whose predecessors are all in earlier
// layers. Nodes within a layer are sorted. It returns a *CycleError when the
// graph has a cycle.
func (g *Graph) Layers() ([][]string, error) {
	if c := g.Cycle(); c != nil {
		return nil, &CycleError{Cycle: c}
	}
	indeg := map[string]int{}
	for _, n := range g.nodes {
		indeg[n] = len(g.pred[n])
	}
	var layers [][]string
	var cur []string
	for _, n := range g.nodes {
		if indeg[n] == 0 {
			cur = append(cur, n)
		}
	}
	for len(cur) > 0 {
		slices.Sort(cur)
		layers = append(layers, cur)
		var next []string
		for _, n := range cur {
			for _, s := range g.succ[n] {
				indeg[s]--
				if indeg[s] == 0 {
					next = append(next, s)
				}
			}
		}
		cur = next
	}
	return layers, nil
}

// TopoOrder returns the nodes layer by layer.
func (g *Graph) TopoOrder() ([]string, error) {
	layers, err := g.Layers()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range layers {
		out = append(out, l...)
	}
	return out, nil
}

// Subgraph returns the graph induced by keep: its nodes, in g's order, and
// the edges between them.
func (g *Graph) Subgraph(keep func(string) bool) *Graph {
	s := New()
	for _, n := range g.nodes {
		if keep(n) {
			s.AddNode(n)
		}
	}
	for _, n := range s.nodes {
		for _, t := range g.succ[n] {
			if s.Has(t) {
				s.AddEdge(n, t)
			}
		}
	}
	return s
}

// Label decorates a node in rendered graphs: a text shown under its name
// and a class (Mermaid) or color (DOT) such as "succeeded" or "failed".
type Label struct {
	Text  string
	Class string
}

// Mermaid renders the graph as a Mermaid flowchart, top to bottom. labels may
// be nil; classes known to pipectl (succeeded, failed, skipped, cancelled,
// cached, running, pending) get colors.
func (g *Graph) Mermaid(labels map[string]Label) string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	ids := map[string]string{}
	for i, n := range g.nodes {
		ids[n] = fmt.Sprintf("s%d", i)
	}
	for _, n := range g.nodes {
		text := n
		if l, ok := labels[n]; ok && l.Text != "" {
			text = n + "<br/>" + l.Text
		}
		fmt.Fprintf(&b, "    %s[\"%s\"]\n", ids[n], mermaidEscape(text))
	}
	for _, n := range g.nodes {
		for _, s := range g.succ[n] {
			fmt.Fprintf(&b, "    %s --> %s\n", ids[n], ids[s])
		}
	}
	used := map[string]bool{}
	for _, n := range g.nodes {
		if l, ok := labels[n]; ok && l.Class != "" {
			used[l.Class] = true
			fmt.Fprintf(&b, "    class %s %s\n", ids[n], l.Class)
		}
	}
	for _, c := range sortedKeys(used) {
		if style, ok := mermaidStyles[c]; ok {
			fmt.Fprintf(&b, "    classDef %s %s\n", c, style)
		}
	}
	return b.String()
}

var mermaidStyles = map[string]string{
	"succeeded": "fill:#d3f9d8,stroke:#2b8a3e",
	"cached":    "fill:#e7f5ff,stroke:#1971c2",
	"failed":    "fill:#ffe3e3,stroke:#c92a2a",
	"cancelled": "fill:#fff3bf,stroke:#e67700",
	"skipped":   "fill:#f1f3f5,stroke:#868e96,stroke-dasharray: 4 4",
	"running":   "fill:#fff9db,stroke:#f08c00",
	"pending":   "fill:#f8f9fa,stroke:#adb5bd",
}

func mermaidEscape(s string) string {
	return strings.ReplaceAll(s, `"`, "#quot;")
}

// DOT renders the graph in Graphviz DOT, left to right.
func (g *Graph) DOT(name string, labels map[string]Label) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n", name)
	for _, n := range g.nodes {
		attrs := []string{fmt.Sprintf("label=%q", n)}
		if l, ok := labels[n]; ok {
			if l.Text != "" {
				attrs[0] = fmt.Sprintf("label=%q", n+"\n"+l.Text)
			}
			if c, ok := dotColors[l.Class]; ok {
				attrs = append(attrs, fmt.Sprintf("color=%q", c))
			}
		}
		fmt.Fprintf(&b, "    %q [%s];\n", n, strings.Join(attrs, ", "))
	}
	for _, n := range g.nodes {
		for _, s := range g.succ[n] {
			fmt.Fprintf(&b, "    %q -> %q;\n", n, s)
		}
	}
	b.WriteString("}\n")
	return b.String()
}

var dotColors = map[string]string{
	"succeeded": "darkgreen", "cached": "blue", "failed": "red",
	"cancelled": "orange", "skipped": "gray", "running": "goldenrod", "pending": "gray",
}
