package main

import (
	"github.com/pipectl/pipectl/engine/dag"
	"github.com/pipectl/pipectl/engine/plan"
)

func testPlanWithGraph(g *dag.Graph) *plan.Plan { return &plan.Plan{Graph: g} }
