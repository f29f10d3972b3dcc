package databricks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// A cached stage's reported paths are only ever checked inside the target's
// Volume: one that leaves it counts as missing (the stage runs again), and
// nothing outside is looked at.
func TestCheckOutputsStaysInTheVolume(t *testing.T) {
	r := newRig(t, emulator.Options{})
	task := r.task("write", "write.py", nil)
	for _, p := range []string{"/Volumes/dev/s/v/../../other/data/v1", "/Volumes/prod/s/v/data/v1", "/Volumes/dev/s/v2/data"} {
		for _, key := range []string{"data_path", "predictions_path"} {
			check, err := r.x.CheckOutputs(context.Background(), executor.CheckRequest{Task: task, Outputs: map[string]string{key: p}})
			if err != nil || check.Exists || !strings.Contains(check.Reason, "is not inside the target's Volume /Volumes/dev/s/v") {
				t.Errorf("%s %s: %+v, %v", key, p, check, err)
			}
		}
	}
}

// TestCancelDuringSubmitLeavesNoRun cancels a stage while its submit call
// is in flight and Databricks has already started the run (the answer is
// lost): the executor learns the run through its idempotency token and
// cancels it, so no run is left running that nobody knows about.
func TestCancelDuringSubmitLeavesNoRun(t *testing.T) {
	r := newRig(t, emulator.Options{})
	r.e.InjectHTTP(emulator.HTTPFault{Endpoint: "POST /api/2.2/jobs/runs/submit", LoseResponse: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan executor.Result, 1)
	go func() {
		res, err := r.x.Run(ctx, r.task("long", "sleep.py", map[string]string{"seconds": "120"}), (&events{}).sink)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	deadline := time.Now().Add(time.Minute)
	for len(r.e.RunIDs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the run was never submitted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // the submit's answer is still held
	var res executor.Result
	select {
	case res = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return after cancellation")
	}
	if res.Status != executor.Cancelled {
		t.Errorf("status %s: %+v", res.Status, res.Error)
	}
	if active := r.e.ActiveRuns(); len(active) != 0 {
		t.Errorf("Run returned while runs %v were still active", active)
	}
	if ids := r.e.RunIDs(); len(ids) != 1 {
		t.Errorf("runs %v: the second submit must get the first run (same idempotency token)", ids)
	}
}
