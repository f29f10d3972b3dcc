package emulator

import (
	"fmt"
	"path"
	"strings"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// validateCompute checks the tasks' clusters and libraries as the Jobs API
// does: job_cluster_key must name one of the job's job_clusters (runs/submit
// has none: its tasks bring their own new_cluster), a cluster takes a fixed
// size or autoscale, not both, and libraries go on clusters (serverless
// tasks take environment dependencies instead).
func validateCompute(tasks []jobs.Task, clusters []jobs.JobCluster, submit bool) error {
	keys := map[string]bool{}
	for _, c := range clusters {
		if c.JobClusterKey == "" {
			return fmt.Errorf("job_clusters: job_cluster_key is required")
		}
		if keys[c.JobClusterKey] {
			return fmt.Errorf("job_clusters: duplicate job_cluster_key %q", c.JobClusterKey)
		}
		keys[c.JobClusterKey] = true
		if err := validateCluster(c.NewCluster); err != nil {
			return fmt.Errorf("job_clusters %s: %v", c.JobClusterKey, err)
		}
	}
	for _, t := range tasks {
		if t.JobClusterKey != "" && !keys[t.JobClusterKey] {
			if submit {
				return fmt.Errorf("Task %s: job_cluster_key is not supported in runs/submit; give the task a new_cluster", t.TaskKey)
			}
			return fmt.Errorf("Task %s: job_cluster_key %q does not name a job cluster of the job", t.TaskKey, t.JobClusterKey)
		}
		if t.NewCluster != nil {
			if err := validateCluster(t.NewCluster); err != nil {
				return fmt.Errorf("Task %s: new_cluster: %v", t.TaskKey, err)
			}
		}
		if len(t.Libraries) > 0 && t.EnvironmentKey != "" {
			return fmt.Errorf("Task %s: libraries are not supported on serverless compute; use the environment's dependencies", t.TaskKey)
		}
		for _, l := range t.Libraries {
			if err := validateLibrary(l); err != nil {
				return fmt.Errorf("Task %s: %v", t.TaskKey, err)
			}
		}
	}
	return nil
}

func validateCluster(c *compute.ClusterSpec) error {
	if c == nil {
		return fmt.Errorf("new_cluster is required")
	}
	if c.SparkVersion == "" && c.PolicyId == "" {
		return fmt.Errorf("spark_version is required")
	}
	if c.NodeTypeId == "" && c.InstancePoolId == "" && c.PolicyId == "" {
		return fmt.Errorf("node_type_id or instance_pool_id is required")
	}
	if c.Autoscale != nil && (c.NumWorkers > 0 || hasField(c.ForceSendFields, "NumWorkers")) {
		return fmt.Errorf("num_workers and autoscale cannot both be set")
	}
	if a := c.Autoscale; a != nil && (a.MaxWorkers < 1 || a.MinWorkers > a.MaxWorkers) {
		return fmt.Errorf("autoscale: max_workers must be at least 1 and at least min_workers")
	}
	switch c.DataSecurityMode {
	case "", compute.DataSecurityModeSingleUser, compute.DataSecurityModeUserIsolation, compute.DataSecurityModeNone,
		compute.DataSecurityModeDataSecurityModeDedicated, compute.DataSecurityModeDataSecurityModeStandard,
		compute.DataSecurityModeDataSecurityModeAuto, compute.DataSecurityModeLegacySingleUser,
		compute.DataSecurityModeLegacyTableAcl, compute.DataSecurityModeLegacyPassthrough,
		compute.DataSecurityModeLegacySingleUserStandard:
	default:
		return fmt.Errorf("data_security_mode %q is not valid", c.DataSecurityMode)
	}
	return nil
}

func hasField(fields []string, name string) bool {
	for _, f := range fields {
		if f == name {
			return true
		}
	}
	return false
}

// validateLibrary accepts PyPI requirements and wheel files in the
// workspace or a Volume (DBFS paths are refused on Unity Catalog).
func validateLibrary(l compute.Library) error {
	switch {
	case l.Pypi != nil:
		if l.Pypi.Package == "" {
			return fmt.Errorf("libraries: pypi.package is required")
		}
	case l.Whl != "":
		if !strings.HasSuffix(l.Whl, ".whl") || !(strings.HasPrefix(l.Whl, "/Volumes/") || strings.HasPrefix(l.Whl, "/Workspace/")) {
			return fmt.Errorf("libraries: whl %q must be a .whl file under /Volumes/ or /Workspace/", l.Whl)
		}
		if path.Clean(l.Whl) != l.Whl {
			return fmt.Errorf("libraries: whl %q is not a clean path", l.Whl)
		}
	default:
		return fmt.Errorf("libraries: the emulator installs pypi and whl libraries only")
	}
	return nil
}
