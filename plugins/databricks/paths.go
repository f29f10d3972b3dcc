package databricks

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Names from specs become workspace and Volume paths: the workspace root,
// notebook paths, the files of the imported code, the data and predictions
// paths a cached stage reports. pipectl validate refuses unsafe ones before
// anything runs; these checks hold at run time too, whatever reaches the
// executor (defence in depth, docs/RELIABILITY.md).

// inside joins rel, a slash-separated relative path, to root and fails
// unless the result is strictly below root.
func inside(root, rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || slices.Contains(strings.Split(rel, "/"), "..") {
		return "", fmt.Errorf("%q is not a path inside %s", rel, root)
	}
	p := path.Join(root, rel)
	if !strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/") {
		return "", fmt.Errorf("%q is not a path inside %s", rel, root)
	}
	return p, nil
}

// below reports whether p, an absolute path, is strictly below root once
// cleaned (so that "/Volumes/c/s/v/../../x" is not below /Volumes/c/s/v).
func below(root, p string) bool {
	return strings.HasPrefix(p, "/") && !slices.Contains(strings.Split(p, "/"), "..") &&
		strings.HasPrefix(path.Clean(p), strings.TrimSuffix(root, "/")+"/")
}

// workspaceFolder is workspace_root as an API path: absolute, without '..',
// below the workspace's root.
func workspaceFolder(root string) (string, error) {
	if !strings.HasPrefix(root, "/") || slices.Contains(strings.Split(root, "/"), "..") {
		return "", fmt.Errorf("workspace_root %q must be an absolute workspace path without '..'", root)
	}
	p := apiPath(path.Clean(root))
	if p == "/" {
		return "", fmt.Errorf("workspace_root must be a folder below the workspace root, e.g. /Workspace/Shared/pipectl")
	}
	return p, nil
}
