package databricks

import (
	"strings"
	"testing"
)

// Names never leave their roots in the workspace or the Volume, even when
// they did not come through pipectl validate.
func TestPathsStayInsideTheirRoots(t *testing.T) {
	for _, rel := range []string{"..", "../x", "a/../../x", "/etc/passwd", "", "a/.."} {
		if p, err := inside("/Shared/pipectl/.pipectl/code/abc", rel); err == nil {
			t.Errorf("inside(%q) = %q, want an error", rel, p)
		}
	}
	if p, err := inside("/Shared/pipectl/.pipectl/code/abc", "notebooks/sentiment/x.py"); err != nil || p != "/Shared/pipectl/.pipectl/code/abc/notebooks/sentiment/x.py" {
		t.Errorf("inside: %q, %v", p, err)
	}

	for _, root := range []string{"Shared/x", "/Workspace/../Users/someone", "/", "/Workspace", "/Workspace/"} {
		if p, err := workspaceFolder(root); err == nil {
			t.Errorf("workspaceFolder(%q) = %q, want an error", root, p)
		}
	}
	if p, err := codeFolder("/Workspace/Shared/pipectl/dev", strings.Repeat("ab", 32)); err != nil || p != "/Shared/pipectl/dev/.pipectl/code/abababababababababab" {
		t.Errorf("codeFolder: %q, %v", p, err)
	}

	vol := "/Volumes/dev/sentiment/pipectl"
	for p, want := range map[string]bool{
		vol + "/data/news/v1":                  true,
		vol + "/predictions/p/r/x.parquet":     true,
		vol:                                    false,
		vol + "/../other/data":                 false,
		vol + "/data/../../other":              false,
		"/Volumes/dev/sentiment/pipectl2/data": false,
		"/Volumes/prod/sentiment/pipectl/data": false,
	} {
		if got := below(vol, p); got != want {
			t.Errorf("below(%q) = %v, want %v", p, got, want)
		}
	}

	for _, loc := range []codeLocation{{Folder: "/Shared/pipectl/.pipectl/code/abc"}, {Git: &GitSource{URL: "file:///repo"}}} {
		if nt, err := loc.notebookTask("notebooks/../../escape.py", nil); err == nil {
			t.Errorf("%+v: notebook task for an escaping notebook: %q", loc, nt.NotebookPath)
		}
		nt, err := loc.notebookTask("notebooks/train_model.py", nil)
		if err != nil || !strings.HasSuffix(nt.NotebookPath, "notebooks/train_model") || strings.HasPrefix(nt.NotebookPath, "/") == (loc.Git != nil) {
			t.Errorf("%+v: notebook task %+v, %v", loc, nt, err)
		}
	}
}

// The bundle's files never land outside its folder.
func TestCodeFilesStayInTheirFolder(t *testing.T) {
	b := &codeBundle{Hash: strings.Repeat("0", 64), Files: []codeFile{{Rel: "notebooks/x.py"}, {Rel: "../../Users/me/x.py"}}}
	if _, err := codeDirs("/Shared/pipectl/.pipectl/code/0000", b); err == nil || !strings.Contains(err.Error(), "is not a path inside") {
		t.Fatalf("err = %v", err)
	}
	b.Files = b.Files[:1]
	dirs, err := codeDirs("/Shared/pipectl/.pipectl/code/0000", b)
	if err != nil || !dirs["/Shared/pipectl/.pipectl/code/0000/notebooks"] {
		t.Fatalf("dirs %v, %v", dirs, err)
	}
}
