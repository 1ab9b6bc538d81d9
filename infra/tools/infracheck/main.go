// infracheck validates what generic tools cannot, for scripts/check-infra:
//
//	infracheck crd [-rules-dir DIR] FILE...
//	    Custom resources in rendered manifests (KEDA ScaledObject/TriggerAuthentication,
//	    Prometheus Operator ServiceMonitor/PrometheusRule) are decoded strictly (unknown
//	    or mistyped fields fail) into the operators' own Go API types, the source their CRD
//	    schemas are generated from, then checked with KEDA's own validation functions and
//	    cross-checked against the Deployment/Service they point at. With -rules-dir, each
//	    PrometheusRule's spec is written there for `promtool check rules`.
//	infracheck envnames -known FILE [-compose FILE] MANIFEST...
//	    Every GUARDSTREAM_* variable set by the manifests or the compose file is a setting.
//	infracheck compose [-profile P]... FILE
//	    Loads a compose file with compose-go (the loader and schema behind
//	    `docker compose config`) once per profile: schema, interpolation, consistency.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: infracheck crd|compose|envnames ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "crd":
		err = runCRD(os.Args[2:])
	case "compose":
		err = runCompose(os.Args[2:])
	case "envnames":
		err = runEnvNames(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "infracheck:", err)
		os.Exit(1)
	}
}

type object struct {
	raw  []byte
	meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	source string
}

func (o *object) id() string { return o.meta.Kind + "/" + o.meta.Metadata.Name }

func readObjects(path string) ([]*object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	reader := k8syaml.NewYAMLReader(bufioReader(data))
	var objs []*object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		o := &object{raw: doc, source: path}
		if err := yaml.Unmarshal(doc, &o.meta); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// strictDecode decodes like the API server: YAML to JSON first (so a number never becomes
// a string field by accident, as sigs.k8s.io/yaml's type-guided conversion would do), then
// JSON with unknown fields rejected.
func strictDecode(raw []byte, into any) error {
	data, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func runCRD(args []string) error {
	fs := flag.NewFlagSet("crd", flag.ContinueOnError)
	rulesDir := fs.String("rules-dir", "", "write each PrometheusRule spec to DIR/<name>.yml")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var objs []*object
	for _, path := range fs.Args() {
		got, err := readObjects(path)
		if err != nil {
			return err
		}
		objs = append(objs, got...)
	}
	byKind := map[string]map[string]*object{}
	for _, o := range objs {
		if byKind[o.meta.Kind] == nil {
			byKind[o.meta.Kind] = map[string]*object{}
		}
		byKind[o.meta.Kind][o.meta.Metadata.Name] = o
	}

	var problems []string
	fail := func(o *object, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("%s (%s): %s", o.id(), o.source, fmt.Sprintf(format, a...)))
	}
	checked := 0
	for _, o := range objs {
		group := strings.SplitN(o.meta.APIVersion, "/", 2)[0]
		if group != "keda.sh" && group != "monitoring.coreos.com" {
			continue
		}
		checked++
		switch o.meta.APIVersion + " " + o.meta.Kind {
		case "keda.sh/v1alpha1 ScaledObject":
			var so kedav1alpha1.ScaledObject
			if err := strictDecode(o.raw, &so); err != nil {
				fail(o, "%v", err)
				continue
			}
			if err := kedav1alpha1.CheckReplicaCountBoundsAreValid(&so); err != nil {
				fail(o, "%v", err)
			}
			if err := kedav1alpha1.CheckFallbackValid(&so); err != nil {
				fail(o, "%v", err)
			}
			if err := kedav1alpha1.ValidateTriggers(so.Spec.Triggers); err != nil {
				fail(o, "%v", err)
			}
			if so.Spec.ScaleTargetRef == nil || so.Spec.ScaleTargetRef.Name == "" {
				fail(o, "spec.scaleTargetRef.name is required")
			} else if kind := so.Spec.ScaleTargetRef.Kind; kind == "" || kind == "Deployment" {
				if byKind["Deployment"][so.Spec.ScaleTargetRef.Name] == nil {
					fail(o, "scaleTargetRef: no Deployment %q in the manifests", so.Spec.ScaleTargetRef.Name)
				}
			}
			for _, t := range so.Spec.Triggers {
				if t.Type == "kafka" {
					if err := checkKafkaTrigger(t); err != nil {
						fail(o, "%v", err)
					}
				}
				if t.AuthenticationRef != nil && (t.AuthenticationRef.Kind == "" || t.AuthenticationRef.Kind == "TriggerAuthentication") &&
					byKind["TriggerAuthentication"][t.AuthenticationRef.Name] == nil {
					fail(o, "trigger %s: no TriggerAuthentication %q in the manifests", t.Type, t.AuthenticationRef.Name)
				}
			}
		case "keda.sh/v1alpha1 TriggerAuthentication":
			var ta kedav1alpha1.TriggerAuthentication
			if err := strictDecode(o.raw, &ta); err != nil {
				fail(o, "%v", err)
			}
		case "monitoring.coreos.com/v1 ServiceMonitor":
			var sm monv1.ServiceMonitor
			if err := strictDecode(o.raw, &sm); err != nil {
				fail(o, "%v", err)
				continue
			}
			checkServiceMonitor(o, &sm, byKind["Service"], fail)
		case "monitoring.coreos.com/v1 PrometheusRule":
			var pr monv1.PrometheusRule
			if err := strictDecode(o.raw, &pr); err != nil {
				fail(o, "%v", err)
				continue
			}
			if len(pr.Spec.Groups) == 0 {
				fail(o, "spec.groups is empty")
			}
			if *rulesDir != "" {
				spec, err := yaml.Marshal(pr.Spec)
				if err != nil {
					return err
				}
				out := filepath.Join(*rulesDir, o.meta.Metadata.Name+".yml")
				if err := os.WriteFile(out, spec, 0o644); err != nil {
					return err
				}
			}
		default:
			fail(o, "no check for custom resource %s %s: add one to infracheck", o.meta.APIVersion, o.meta.Kind)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	fmt.Printf("%d custom resources valid (%d objects read)\n", checked, len(objs))
	return nil
}

// checkServiceMonitor: its selector must pick a Service of the manifests and its
// endpoints must name a port of that Service.
func checkServiceMonitor(o *object, sm *monv1.ServiceMonitor, services map[string]*object, fail func(*object, string, ...any)) {
	if len(sm.Spec.Endpoints) == 0 {
		fail(o, "spec.endpoints is empty")
	}
	for _, svcObj := range services {
		matches := true
		for k, v := range sm.Spec.Selector.MatchLabels {
			if svcObj.meta.Metadata.Labels[k] != v {
				matches = false
			}
		}
		if !matches {
			continue
		}
		var svc struct {
			Spec struct {
				Ports []struct {
					Name string `json:"name"`
				} `json:"ports"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(svcObj.raw, &svc); err != nil {
			fail(o, "%v", err)
			return
		}
		for _, ep := range sm.Spec.Endpoints {
			found := false
			for _, p := range svc.Spec.Ports {
				found = found || p.Name == ep.Port
			}
			if !found {
				fail(o, "endpoint port %q is not a port of Service %s", ep.Port, svcObj.meta.Metadata.Name)
			}
		}
		return
	}
	fail(o, "selector %v matches no Service in the manifests", sm.Spec.Selector.MatchLabels)
}

func runCompose(args []string) error {
	fs := flag.NewFlagSet("compose", flag.ContinueOnError)
	var profiles multiFlag
	fs.Var(&profiles, "profile", "profile to load (repeatable; each one is loaded on its own)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("compose: one compose file expected")
	}
	file, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	if len(profiles) == 0 {
		profiles = multiFlag{""}
	}
	for _, profile := range profiles {
		opts := []cli.ProjectOptionsFn{
			cli.WithWorkingDirectory(filepath.Dir(file)),
			cli.WithOsEnv,
			cli.WithDotEnv,
			cli.WithInterpolation(true),
			cli.WithResolvedPaths(true),
			cli.WithNormalization(true),
			cli.WithConsistency(true),
		}
		if profile != "" {
			opts = append(opts, cli.WithProfiles([]string{profile}))
		}
		options, err := cli.NewProjectOptions([]string{file}, opts...)
		if err != nil {
			return err
		}
		project, err := options.LoadProject(context.Background())
		if err != nil {
			return fmt.Errorf("profile %q: %w", profile, err)
		}
		for _, svc := range project.Services {
			if svc.Build == nil {
				continue
			}
			dockerfile := svc.Build.Dockerfile
			if dockerfile == "" {
				dockerfile = "Dockerfile"
			}
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(svc.Build.Context, dockerfile)
			}
			if _, err := os.Stat(dockerfile); err != nil {
				return fmt.Errorf("profile %q: service %s: build: %w", profile, svc.Name, err)
			}
		}
		fmt.Printf("profile %q: services %s\n", profile, strings.Join(project.ServiceNames(), ","))
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
