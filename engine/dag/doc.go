// Package dag is the stage graph: nodes are stage names, an edge a→b means
// "a must finish before b starts". It finds cycles (and names them),
// orders the graph in topological layers and renders it as Mermaid or DOT.
package dag
