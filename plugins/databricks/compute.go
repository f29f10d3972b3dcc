package databricks

import (
	"slices"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/diag"
)

// Compute defaults (schemas/targets.cue #Compute repeats them for people).
const (
	// DefaultSparkVersion is the Databricks Runtime of new clusters: the ML
	// LTS runtime (17.3 LTS ML: Python 3.12, Spark 4.0, scikit-learn and
	// MLflow preinstalled).
	DefaultSparkVersion = "17.3.x-cpu-ml-scala2.13"
	// DefaultEnvironmentVersion is the serverless environment: version 4
	// (Python 3.12, Databricks Connect 17.3), the stack of the default
	// runtime, so both compute kinds run the same Python.
	DefaultEnvironmentVersion = "4"
	// DefaultDataSecurityMode is the access mode of new clusters: single
	// user (dedicated) reaches Unity Catalog (Volumes, the databricks-uc
	// registry); a cluster without an access mode does not.
	DefaultDataSecurityMode = "SINGLE_USER"
)

// jobClusterKey names the one job cluster a deployed job's tasks share.
const jobClusterKey = "pipectl"

// ComputeSpec is the one place that turns a target's compute block into
// the SDK's structs: where a task runs and what it installs (the pinned
// requirements and the project's wheel).
type ComputeSpec struct {
	c    Compute
	libs []string
}

// NewComputeSpec builds the compute of cfg's target. libraries are what
// every task installs: pinned PyPI requirements ("name==1.2") and paths of
// wheels ("/Volumes/.../x.whl").
func NewComputeSpec(cfg *Config, libraries []string) ComputeSpec {
	return ComputeSpec{c: cfg.Compute, libs: libraries}
}

// Environments is the run's or job's serverless environment (nothing for
// cluster compute): the libraries are its dependencies.
func (s ComputeSpec) Environments() []jobs.JobEnvironment {
	if s.c.Kind != ComputeServerless {
		return nil
	}
	return []jobs.JobEnvironment{{EnvironmentKey: environmentKey,
		Spec: &compute.Environment{EnvironmentVersion: s.c.EnvironmentVersion, Dependencies: s.libs}}}
}

// JobClusters is the one cluster the tasks of a deployed job share
// (new_cluster compute only).
func (s ComputeSpec) JobClusters() []jobs.JobCluster {
	if s.c.Kind != ComputeNewCluster {
		return nil
	}
	cl := s.Cluster()
	return []jobs.JobCluster{{JobClusterKey: jobClusterKey, NewCluster: &cl}}
}

// Cluster is the new cluster of new_cluster compute.
func (s ComputeSpec) Cluster() compute.ClusterSpec {
	c := s.c
	spec := compute.ClusterSpec{SparkVersion: c.SparkVersion, NodeTypeId: c.NodeTypeID, DriverNodeTypeId: c.DriverNodeTypeID,
		InstancePoolId: c.InstancePoolID, DriverInstancePoolId: c.DriverInstancePoolID, PolicyId: c.PolicyID,
		DataSecurityMode: compute.DataSecurityMode(c.DataSecurityMode), SingleUserName: c.SingleUserName,
		SparkConf: c.SparkConf, SparkEnvVars: c.SparkEnvVars, CustomTags: c.CustomTags}
	if c.PolicyID != "" {
		// The policy's defaults fill what the spec leaves out.
		spec.ApplyPolicyDefaultValues = true
	}
	if a := c.Autoscale; a != nil {
		spec.Autoscale = &compute.AutoScale{MinWorkers: a.MinWorkers, MaxWorkers: a.MaxWorkers, ForceSendFields: []string{"MinWorkers"}}
	} else {
		spec.NumWorkers = c.workers()
		spec.ForceSendFields = []string{"NumWorkers"} // 0 is a single-node cluster, not "unset"
	}
	return spec
}

func (s ComputeSpec) libraries() []compute.Library {
	var out []compute.Library
	for _, l := range s.libs {
		if isWheelPath(l) {
			out = append(out, compute.Library{Whl: l})
		} else {
			out = append(out, compute.Library{Pypi: &compute.PythonPyPiLibrary{Package: l}})
		}
	}
	return out
}

// ApplySubmit puts the compute on a task of a one-time run (runs/submit):
// runs/submit takes no job_clusters, so a cluster is the task's own.
func (s ComputeSpec) ApplySubmit(t *jobs.Task) {
	s.apply(t, false)
}

// ApplyJob puts the compute on a task of a deployed job: the tasks share
// the job's one job cluster (JobClusters) or serverless environment.
func (s ComputeSpec) ApplyJob(t *jobs.Task) {
	s.apply(t, true)
}

func (s ComputeSpec) apply(t *jobs.Task, shared bool) {
	switch s.c.Kind {
	case ComputeServerless:
		t.EnvironmentKey = environmentKey
	case ComputeExistingCluster:
		t.ExistingClusterId = s.c.ExistingClusterID
		t.Libraries = s.libraries()
	case ComputeNewCluster:
		if shared {
			t.JobClusterKey = jobClusterKey
		} else {
			cl := s.Cluster()
			t.NewCluster = &cl
		}
		t.Libraries = s.libraries()
	}
}

// isWheelPath reports whether a library is a wheel file (a path), not a
// PyPI requirement.
func isWheelPath(l string) bool {
	return len(l) > 4 && l[len(l)-4:] == ".whl" && (l[0] == '/' || hasScheme(l))
}

func hasScheme(l string) bool {
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case c == ':':
			return i > 0 && len(l) > i+2 && l[i+1:i+3] == "//"
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '+', c == '-', c == '.':
		default:
			return false
		}
	}
	return false
}

// dataSecurityModes are the access modes pipectl accepts; the first two
// reach Unity Catalog from Python notebooks.
var dataSecurityModes = []string{"SINGLE_USER", "USER_ISOLATION", "DATA_SECURITY_MODE_DEDICATED", "DATA_SECURITY_MODE_STANDARD",
	"DATA_SECURITY_MODE_AUTO"}

// validateCluster checks a new_cluster block the way the Jobs API would,
// before any call: what it refuses and combinations that cannot work.
func (c Compute) validateCluster(field string) diag.Diagnostics {
	var ds diag.Diagnostics
	errf := func(sub, fix, format string, args ...any) {
		d := diag.Errorf(diag.Pos{}, field+"."+sub, format, args...)
		d.Fix = fix
		ds = append(ds, d)
	}
	if c.NodeTypeID == "" && c.InstancePoolID == "" && c.PolicyID == "" {
		errf("node_type_id", "set node_type_id (e.g. i3.xlarge, Standard_DS3_v2), or instance_pool_id, or a policy_id whose policy fixes the node type",
			"compute.kind is new_cluster but neither node_type_id nor instance_pool_id is set")
	}
	if c.NodeTypeID != "" && c.InstancePoolID != "" {
		errf("node_type_id", "remove node_type_id: the pool decides the node type",
			"node_type_id and instance_pool_id are both set; a pool's clusters take the pool's node type")
	}
	if c.Autoscale != nil {
		if c.NumWorkers != nil {
			errf("num_workers", "keep autoscale {min_workers, max_workers} or num_workers, not both",
				"num_workers and autoscale are both set")
		}
		if c.Autoscale.MinWorkers < 0 || c.Autoscale.MaxWorkers < 1 || c.Autoscale.MinWorkers > c.Autoscale.MaxWorkers {
			errf("autoscale", "use 0 <= min_workers <= max_workers and max_workers >= 1",
				"autoscale {min_workers: %d, max_workers: %d} is not a range of workers", c.Autoscale.MinWorkers, c.Autoscale.MaxWorkers)
		}
	} else if c.workers() < 0 {
		errf("num_workers", "use 0 (single node) or more", "num_workers %d is negative", c.workers())
	}
	if !slices.Contains(dataSecurityModes, c.DataSecurityMode) {
		errf("data_security_mode", "use SINGLE_USER (the default) or USER_ISOLATION for Unity Catalog",
			"data_security_mode %q is not one pipectl can run notebooks with on Unity Catalog", c.DataSecurityMode)
	}
	if c.SingleUserName != "" && c.DataSecurityMode != "SINGLE_USER" && c.DataSecurityMode != "DATA_SECURITY_MODE_DEDICATED" {
		errf("single_user_name", "remove single_user_name, or set data_security_mode: \"SINGLE_USER\"",
			"single_user_name is set but data_security_mode is %s", c.DataSecurityMode)
	}
	return ds
}
