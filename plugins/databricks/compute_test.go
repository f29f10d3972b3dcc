package databricks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// A new_cluster target gets a cluster that reaches Unity Catalog: the
// SINGLE_USER access mode and the ML LTS runtime by default, pools,
// policies and autoscale passed through; a deployed job declares it once
// in job_clusters and every task uses it, a runs/submit task carries its
// own (runs/submit takes no job_clusters). Libraries: pins as pypi, the
// wheel as whl; on serverless, the environment's dependencies.
func TestComputeSpec(t *testing.T) {
	libs := []string{"mlflow==3.17.2", "/Volumes/c/s/v/.pipectl/wheels/0123/sentiment-0.1.0-py3-none-any.whl"}
	cfg, err := ParseConfig(json.RawMessage(`{"workspace_root": "/Workspace/x", "catalog": "c", "schema": "s", "volume": "v",
		"experiment_root": "/x", "compute": {"kind": "new_cluster", "instance_pool_id": "pool-1", "policy_id": "pol-1",
		"autoscale": {"min_workers": 1, "max_workers": 4}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ds := cfg.Compute.validateCluster("compute"); len(ds) != 0 {
		t.Fatalf("valid cluster refused: %v", ds)
	}
	spec := NewComputeSpec(cfg, libs)
	var a, b jobs.Task
	spec.ApplyJob(&a)
	spec.ApplyJob(&b)
	jc := spec.JobClusters()
	if len(jc) != 1 || a.JobClusterKey != jc[0].JobClusterKey || b.JobClusterKey != jc[0].JobClusterKey || a.NewCluster != nil {
		t.Fatalf("job tasks do not share one job cluster: %+v %+v %+v", jc, a, b)
	}
	got, _ := json.Marshal(jc[0].NewCluster)
	for _, want := range []string{`"data_security_mode":"SINGLE_USER"`, `"spark_version":"17.3.x-cpu-ml-scala2.13"`,
		`"instance_pool_id":"pool-1"`, `"policy_id":"pol-1"`, `"apply_policy_default_values":true`,
		`"autoscale":{"max_workers":4,"min_workers":1}`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("cluster %s lacks %s", got, want)
		}
	}
	if strings.Contains(string(got), "num_workers") {
		t.Errorf("cluster %s sets num_workers with autoscale", got)
	}
	lj, _ := json.Marshal(a.Libraries)
	if string(lj) != `[{"pypi":{"package":"mlflow==3.17.2"}},{"whl":"/Volumes/c/s/v/.pipectl/wheels/0123/sentiment-0.1.0-py3-none-any.whl"}]` {
		t.Errorf("libraries %s", lj)
	}
	var sub jobs.Task
	spec.ApplySubmit(&sub)
	if sub.NewCluster == nil || sub.JobClusterKey != "" || len(sub.Libraries) != 2 {
		t.Errorf("submit task: %+v", sub)
	}
	if spec.Environments() != nil {
		t.Error("a cluster target declares a serverless environment")
	}

	// A fixed size sends num_workers, even 0 (single node).
	cfg.Compute.Autoscale, cfg.Compute.NumWorkers = nil, new(int)
	got, _ = json.Marshal(NewComputeSpec(cfg, libs).Cluster())
	if !strings.Contains(string(got), `"num_workers":0`) {
		t.Errorf("single node cluster %s", got)
	}

	// Serverless: one environment, version 4, the libraries as dependencies.
	sl, _ := ParseConfig(json.RawMessage(`{"workspace_root": "/Workspace/x", "catalog": "c", "schema": "s", "volume": "v", "experiment_root": "/x"}`))
	s := NewComputeSpec(sl, libs)
	var st jobs.Task
	s.ApplyJob(&st)
	env := s.Environments()
	if len(env) != 1 || env[0].Spec.EnvironmentVersion != "4" || len(env[0].Spec.Dependencies) != 2 || st.EnvironmentKey != env[0].EnvironmentKey ||
		st.Libraries != nil || s.JobClusters() != nil {
		t.Errorf("serverless: env %+v task %+v", env, st)
	}
}

// Cluster blocks the Jobs API would refuse are refused before any call,
// naming the field and the fix.
func TestComputeValidation(t *testing.T) {
	two := 2
	for _, tc := range []struct {
		c    Compute
		want string
	}{
		{Compute{Kind: ComputeNewCluster, DataSecurityMode: "SINGLE_USER"}, "neither node_type_id nor instance_pool_id"},
		{Compute{Kind: ComputeNewCluster, DataSecurityMode: "SINGLE_USER", NodeTypeID: "n", InstancePoolID: "p"}, "both set"},
		{Compute{Kind: ComputeNewCluster, DataSecurityMode: "SINGLE_USER", NodeTypeID: "n", NumWorkers: &two, Autoscale: &Autoscale{1, 2}}, "num_workers and autoscale"},
		{Compute{Kind: ComputeNewCluster, DataSecurityMode: "SINGLE_USER", NodeTypeID: "n", Autoscale: &Autoscale{3, 2}}, "not a range"},
		{Compute{Kind: ComputeNewCluster, DataSecurityMode: "NONE", NodeTypeID: "n"}, "data_security_mode \"NONE\""},
		{Compute{Kind: ComputeNewCluster, DataSecurityMode: "USER_ISOLATION", NodeTypeID: "n", SingleUserName: "a@b"}, "single_user_name is set"},
	} {
		ds := tc.c.validateCluster("f.compute")
		if len(ds) != 1 || !strings.Contains(ds[0].Summary, tc.want) || ds[0].Fix == "" {
			t.Errorf("%+v: %v, want one error with %q and a fix", tc.c, ds, tc.want)
		}
	}
}
