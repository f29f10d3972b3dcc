package plugin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// The protocol checks compile executor.proto in process (protocompile) and
// run the same protoc plugins `make proto` runs, pinned in tools/go.mod.
// They do not build buf: buf is only needed to regenerate (make proto), and
// building it cold takes minutes.

const protoFile = "executor/v1/executor.proto"

// compileProto parses and links executor.proto (plus the standard imports)
// with full source info, as protoc and buf produce it.
func compileProto(t *testing.T, root string) []*descriptorpb.FileDescriptorProto {
	t.Helper()
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{root}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := c.Compile(context.Background(), protoFile)
	if err != nil {
		t.Fatalf("compile %s: %v", protoFile, err)
	}
	// Dependencies first, as CodeGeneratorRequest.proto_file requires.
	var out []*descriptorpb.FileDescriptorProto
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		out = append(out, protodesc.ToFileDescriptorProto(fd))
	}
	add(files[0])
	return out
}

// generate runs a protoc plugin (a Go tool of tools/go.mod) on the request.
func generate(t *testing.T, plugin string, files []*descriptorpb.FileDescriptorProto) map[string]string {
	t.Helper()
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: []string{protoFile},
		Parameter:      proto.String("paths=source_relative"),
		ProtoFile:      files,
	}
	in, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "-modfile=../../tools/go.mod", plugin)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", plugin, err, stderr.String())
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(stdout.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error != nil {
		t.Fatalf("%s: %s", plugin, resp.GetError())
	}
	out := map[string]string{}
	for _, f := range resp.File {
		out[f.GetName()] = f.GetContent()
	}
	return out
}

// TestProtoGeneratedCodeIsFresh regenerates proto/executor/v1 and compares
// it with the committed files: after editing executor.proto, run
// `make proto`.
func TestProtoGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the protoc plugins")
	}
	files := compileProto(t, "proto")
	generated := 0
	for _, plugin := range []string{"protoc-gen-go", "protoc-gen-go-grpc"} {
		for name, want := range generate(t, plugin, files) {
			generated++
			got, err := os.ReadFile(filepath.Join("proto", name))
			if err != nil {
				t.Errorf("%s generates %s, which is not committed: run make proto", plugin, name)
				continue
			}
			if string(got) != want {
				t.Errorf("proto/%s is stale: run make proto", name)
			}
			if !strings.Contains(want, "DO NOT EDIT.") {
				t.Errorf("%s lacks the generated-code header", name)
			}
		}
	}
	if generated != 2 {
		t.Errorf("generated %d files, want executor.pb.go and executor_grpc.pb.go", generated)
	}
}

// TestProtoIsBackwardCompatible checks executor.proto against the frozen v1
// baseline (testdata/executor-v1.binpb): protocol v1 may only grow. It also
// checks that the check catches a break.
func TestProtoIsBackwardCompatible(t *testing.T) {
	baseline := loadBaseline(t)
	current := fileOf(t, compileProto(t, "proto"))
	if problems := breaking(baseline, current); len(problems) > 0 {
		t.Errorf("executor.proto breaks protocol v1 (make a v2 package instead):\n%s", strings.Join(problems, "\n"))
	}

	src, err := os.ReadFile(filepath.Join("proto", protoFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string][2]string{
		"deleted field":     {"  string cache_key = 12;\n", ""},
		"renumbered field":  {"string cache_key = 12;", "string cache_key = 99;"},
		"retyped field":     {"string cache_key = 12;", "int64 cache_key = 12;"},
		"streaming changed": {"returns (stream RunEvent)", "returns (RunEvent)"},
	} {
		t.Run(name, func(t *testing.T) {
			broken := strings.Replace(string(src), edit[0], edit[1], 1)
			if broken == string(src) {
				t.Fatalf("the edit %q no longer applies to executor.proto", edit[0])
			}
			tmp := t.TempDir()
			p := filepath.Join(tmp, protoFile)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			if problems := breaking(baseline, fileOf(t, compileProto(t, tmp))); len(problems) == 0 {
				t.Errorf("the compatibility check missed a %s", name)
			}
		})
	}
}

func loadBaseline(t *testing.T) *descriptorpb.FileDescriptorProto {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "executor-v1.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return fileOf(t, set.File)
}

func fileOf(t *testing.T, files []*descriptorpb.FileDescriptorProto) *descriptorpb.FileDescriptorProto {
	t.Helper()
	for _, f := range files {
		if f.GetName() == protoFile {
			return f
		}
	}
	t.Fatalf("no %s among the descriptors", protoFile)
	return nil
}

// breaking lists the wire- and API-incompatible changes from old to new:
// removed or renumbered fields, changed field types or cardinality, removed
// messages, enum values, services or methods, and changed method
// signatures. Adding is always allowed; a field may be removed only when
// its number is reserved.
func breaking(old, new *descriptorpb.FileDescriptorProto) []string {
	var problems []string
	if old.GetPackage() != new.GetPackage() {
		problems = append(problems, fmt.Sprintf("package %s became %s", old.GetPackage(), new.GetPackage()))
	}
	msgs := map[string]*descriptorpb.DescriptorProto{}
	var index func(prefix string, ms []*descriptorpb.DescriptorProto)
	index = func(prefix string, ms []*descriptorpb.DescriptorProto) {
		for _, m := range ms {
			msgs[prefix+m.GetName()] = m
			index(prefix+m.GetName()+".", m.NestedType)
		}
	}
	index("", new.MessageType)
	var check func(prefix string, ms []*descriptorpb.DescriptorProto)
	check = func(prefix string, ms []*descriptorpb.DescriptorProto) {
		for _, m := range ms {
			name := prefix + m.GetName()
			nm := msgs[name]
			if nm == nil {
				problems = append(problems, "message "+name+" was removed")
				continue
			}
			byNumber := map[int32]*descriptorpb.FieldDescriptorProto{}
			for _, f := range nm.Field {
				byNumber[f.GetNumber()] = f
			}
			for _, f := range m.Field {
				nf := byNumber[f.GetNumber()]
				switch {
				case nf == nil && !reserved(nm, f):
					problems = append(problems, fmt.Sprintf("field %s.%s = %d was removed without reserving it", name, f.GetName(), f.GetNumber()))
				case nf == nil:
				case nf.GetType() != f.GetType() || nf.GetTypeName() != f.GetTypeName():
					problems = append(problems, fmt.Sprintf("field %s.%s = %d changed type", name, f.GetName(), f.GetNumber()))
				case nf.GetLabel() != f.GetLabel():
					problems = append(problems, fmt.Sprintf("field %s.%s = %d changed cardinality", name, f.GetName(), f.GetNumber()))
				case (nf.OneofIndex == nil) != (f.OneofIndex == nil):
					problems = append(problems, fmt.Sprintf("field %s.%s = %d moved in or out of a oneof", name, f.GetName(), f.GetNumber()))
				}
			}
			check(name+".", m.NestedType)
		}
	}
	check("", old.MessageType)

	enums := map[string]map[int32]bool{}
	for _, e := range new.EnumType {
		enums[e.GetName()] = map[int32]bool{}
		for _, v := range e.Value {
			enums[e.GetName()][v.GetNumber()] = true
		}
	}
	for _, e := range old.EnumType {
		for _, v := range e.Value {
			if !enums[e.GetName()][v.GetNumber()] {
				problems = append(problems, fmt.Sprintf("enum value %s.%s = %d was removed", e.GetName(), v.GetName(), v.GetNumber()))
			}
		}
	}

	methods := map[string]*descriptorpb.MethodDescriptorProto{}
	for _, s := range new.Service {
		for _, m := range s.Method {
			methods[s.GetName()+"."+m.GetName()] = m
		}
	}
	for _, s := range old.Service {
		for _, m := range s.Method {
			name := s.GetName() + "." + m.GetName()
			nm := methods[name]
			switch {
			case nm == nil:
				problems = append(problems, "method "+name+" was removed")
			case nm.GetInputType() != m.GetInputType() || nm.GetOutputType() != m.GetOutputType():
				problems = append(problems, "method "+name+" changed its request or response type")
			case nm.GetClientStreaming() != m.GetClientStreaming() || nm.GetServerStreaming() != m.GetServerStreaming():
				problems = append(problems, "method "+name+" changed streaming")
			}
		}
	}
	return problems
}

func reserved(m *descriptorpb.DescriptorProto, f *descriptorpb.FieldDescriptorProto) bool {
	for _, r := range m.ReservedRange {
		if f.GetNumber() >= r.GetStart() && f.GetNumber() < r.GetEnd() {
			return true
		}
	}
	return false
}
