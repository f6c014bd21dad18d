// Command ferry-deploy-check checks Ferry's deployment recipes offline, with the libraries the real tools use:
//
//	ferry-deploy-check manifests FILE    every document of a rendered chart (`helm template` output) decodes
//	                                     strictly into its Kubernetes API type (k8s.io/api, the
//	                                     prometheus-operator types for ServiceMonitor): an unknown field, a
//	                                     wrong type or an unknown kind fails; prints each document as one
//	                                     JSON line {"kind", "name", "object"} for the tests to read
//	ferry-deploy-check compose FILE [PROFILE...]
//	                                     loads a compose file with compose-go's loader, which validates it
//	                                     against the compose specification's schema, and prints the resolved
//	                                     project as JSON (the environment, mounts and health checks the tests
//	                                     then run Ferry with)
//	ferry-deploy-check dockerfile FILE   parses a Dockerfile with BuildKit's parser and instruction decoder
//	                                     (a bad flag, instruction or lint finding fails) and prints its
//	                                     ARGs, stages and the final image's settings as JSON
//
// It lives in its own module so the Rust workspace never depends on these Go libraries; the test tools script
// (scripts/deploy-tools.sh) builds it into the test tools directory.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "ferry-deploy-check: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) >= 2 && args[0] == "manifests" && len(args) == 2 {
		return manifests(args[1], out)
	}
	if len(args) >= 2 && args[0] == "compose" {
		return compose(args[1], args[2:], out)
	}
	if len(args) == 2 && args[0] == "dockerfile" {
		return dockerfile(args[1], out)
	}
	return errors.New("usage: ferry-deploy-check manifests FILE | compose FILE [PROFILE...] | dockerfile FILE")
}

// The API groups a chart of Ferry's may render; a kind outside them is an error, not a pass.
func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
		autoscalingv2.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

func manifests(path string, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	scheme, err := newScheme()
	if err != nil {
		return err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	count := 0
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		kind, name, err := decodeStrictly(scheme, doc)
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", path, count+1, err)
		}
		object, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return err
		}
		line, err := json.Marshal(map[string]any{"kind": kind, "name": name, "object": json.RawMessage(object)})
		if err != nil {
			return err
		}
		fmt.Fprintln(out, string(line))
		count++
	}
	if count == 0 {
		return fmt.Errorf("%s: no manifests", path)
	}
	return nil
}

// decodeStrictly decodes one document into the Go type registered for its apiVersion and kind, refusing
// unknown and duplicate fields, and returns its kind and name.
func decodeStrictly(scheme *runtime.Scheme, doc []byte) (string, string, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return "", "", err
	}
	gv, err := schema.ParseGroupVersion(meta.APIVersion)
	if err != nil {
		return "", "", err
	}
	object, err := scheme.New(gv.WithKind(meta.Kind))
	if err != nil {
		return "", "", fmt.Errorf("%s %s: %w", meta.APIVersion, meta.Kind, err)
	}
	// As the API server decodes: field names match case-sensitively (encoding/json alone would take
	// readOnlyRootFileSystem for readOnlyRootFilesystem), and unknown or repeated fields are errors.
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return "", "", fmt.Errorf("%s %q: %w", meta.Kind, meta.Metadata.Name, err)
	}
	strict, err := kjson.UnmarshalStrict(data, object, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	if err != nil {
		return "", "", fmt.Errorf("%s %q: %w", meta.Kind, meta.Metadata.Name, err)
	}
	if meta.Metadata.Name == "" {
		return "", "", fmt.Errorf("%s without metadata.name", meta.Kind)
	}
	return meta.Kind, meta.Metadata.Name, nil
}

func compose(path string, profiles []string, out io.Writer) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	content, err := os.ReadFile(abs)
	if err != nil {
		return err
	}
	// No environment of the caller's: the file's own defaults (${VAR:-default}) are what is checked.
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: content}},
		Environment: types.Mapping{},
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("ferry", true)
		o.Profiles = profiles
	})
	if err != nil {
		return err
	}
	encoded, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(encoded))
	return err
}

// stripComments drops comment lines, so a document holding only `# Source: ...` counts as empty.
func stripComments(doc []byte) []byte {
	var kept []string
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	return []byte(strings.Join(kept, "\n"))
}
