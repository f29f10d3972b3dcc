package executortest

import (
	_ "embed"
	"encoding/json"
)

//go:embed exit_values.json
var exitValuesJSON []byte

// ExitValueCase is one exit value and what the contract makes of it.
type ExitValueCase struct {
	// Promised are the task's outputs (executor.Task.Outputs).
	Promised []string `json:"promised"`
	// Exit is the exit value as the notebook wrote it.
	Exit     string             `json:"exit"`
	Outputs  map[string]string  `json:"outputs"`
	Metrics  map[string]float64 `json:"metrics"`
	Warnings []string           `json:"warnings"`
	// Error, when set, is the start of the parse error's message: the
	// attempt fails.
	Error string `json:"error"`
}

// ExitValueCases returns the shared table, by case name.
func ExitValueCases() map[string]ExitValueCase {
	var f struct {
		Cases map[string]ExitValueCase `json:"cases"`
	}
	if err := json.Unmarshal(exitValuesJSON, &f); err != nil {
		panic("executortest: exit_values.json: " + err.Error())
	}
	return f.Cases
}
