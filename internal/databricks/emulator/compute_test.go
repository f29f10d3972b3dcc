package emulator_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// The emulator refuses the compute the Jobs API refuses: a task naming a
// job cluster the job does not declare, num_workers with autoscale,
// libraries on a serverless task, a library that is neither a PyPI
// package nor a wheel in the workspace or a Volume; a shared job cluster
// is accepted.
func TestComputeValidation(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{Python: dbtest.NoPython})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	nb := &jobs.NotebookTask{NotebookPath: "/Shared/nb"}
	cluster := &compute.ClusterSpec{SparkVersion: "17.3.x-cpu-ml-scala2.13", NodeTypeId: "i3.xlarge", NumWorkers: 1,
		DataSecurityMode: compute.DataSecurityModeSingleUser}
	whl := compute.Library{Whl: "/Volumes/c/s/v/.pipectl/wheels/0/x-1.0-py3-none-any.whl"}
	ok := jobs.CreateJob{Name: "ok", JobClusters: []jobs.JobCluster{{JobClusterKey: "pipectl", NewCluster: cluster}},
		Tasks: []jobs.Task{{TaskKey: "a", NotebookTask: nb, JobClusterKey: "pipectl", Libraries: []compute.Library{whl}},
			{TaskKey: "b", NotebookTask: nb, JobClusterKey: "pipectl", DependsOn: []jobs.TaskDependency{{TaskKey: "a"}}}}}
	if _, err := w.Jobs.Create(ctx, ok); err != nil {
		t.Fatalf("a shared job cluster: %v", err)
	}
	both := *cluster
	both.Autoscale = &compute.AutoScale{MinWorkers: 1, MaxWorkers: 2}
	for name, bad := range map[string]jobs.CreateJob{
		"unknown job cluster":       {Name: "x", Tasks: []jobs.Task{{TaskKey: "a", NotebookTask: nb, JobClusterKey: "nope"}}},
		"autoscale and num_workers": {Name: "x", Tasks: []jobs.Task{{TaskKey: "a", NotebookTask: nb, NewCluster: &both}}},
		"libraries on serverless": {Name: "x", Environments: []jobs.JobEnvironment{{EnvironmentKey: "e", Spec: &compute.Environment{EnvironmentVersion: "4"}}},
			Tasks: []jobs.Task{{TaskKey: "a", NotebookTask: nb, EnvironmentKey: "e", Libraries: []compute.Library{whl}}}},
		"dbfs wheel": {Name: "x", Tasks: []jobs.Task{{TaskKey: "a", NotebookTask: nb, NewCluster: cluster,
			Libraries: []compute.Library{{Whl: "dbfs:/x-1.0-py3-none-any.whl"}}}}},
	} {
		_, err := w.Jobs.Create(ctx, bad)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	}
}
