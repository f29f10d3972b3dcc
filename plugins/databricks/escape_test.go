package databricks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/plugins/databricks/emulator"
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
