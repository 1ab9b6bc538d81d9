package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"sigs.k8s.io/yaml"
)

// runEnvNames: every GUARDSTREAM_* variable that the manifests (ConfigMap data, container
// env) and the compose file (all profiles) set must be a setting the worker knows; the
// worker would reject or silently ignore anything else.
//
//	infracheck envnames -known FILE [-compose FILE] [-dump DIR] MANIFEST...
func runEnvNames(args []string) error {
	fs := flag.NewFlagSet("envnames", flag.ContinueOnError)
	knownFile := fs.String("known", "", "file with one known GUARDSTREAM_* name per line")
	composeFile := fs.String("compose", "", "compose file to check as well")
	dumpDir := fs.String("dump", "", "write each ConfigMap's data as NAME=VALUE lines to DIR/<name>.env")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(*knownFile)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, line := range strings.Fields(string(data)) {
		known[line] = true
	}
	if len(known) == 0 {
		return errors.New("envnames: no known names")
	}
	seen := map[string][]string{} // name -> where
	add := func(name, where string) {
		if strings.HasPrefix(name, "GUARDSTREAM_") {
			seen[name] = append(seen[name], where)
		}
	}
	for _, path := range fs.Args() {
		objs, err := readObjects(path)
		if err != nil {
			return err
		}
		for _, o := range objs {
			switch o.meta.Kind {
			case "ConfigMap":
				var cm struct {
					Data map[string]string `json:"data"`
				}
				if err := yaml.Unmarshal(o.raw, &cm); err != nil {
					return err
				}
				var lines []string
				for k, v := range cm.Data {
					add(k, o.id())
					if strings.ContainsAny(v, "\n\x00") {
						return fmt.Errorf("%s: value of %s spans lines", o.id(), k)
					}
					lines = append(lines, k+"="+v)
				}
				if *dumpDir != "" {
					sort.Strings(lines)
					name := filepath.Join(*dumpDir, filepath.Base(path)+"."+o.meta.Metadata.Name+".env")
					if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
						return err
					}
				}
			case "Deployment", "StatefulSet", "DaemonSet", "Job":
				var w struct {
					Spec struct {
						Template struct {
							Spec struct {
								Containers []struct {
									Env []struct {
										Name string `json:"name"`
									} `json:"env"`
								} `json:"containers"`
							} `json:"spec"`
						} `json:"template"`
					} `json:"spec"`
				}
				if err := yaml.Unmarshal(o.raw, &w); err != nil {
					return err
				}
				for _, c := range w.Spec.Template.Spec.Containers {
					for _, e := range c.Env {
						add(e.Name, o.id())
					}
				}
			}
		}
	}
	if *composeFile != "" {
		file, err := filepath.Abs(*composeFile)
		if err != nil {
			return err
		}
		options, err := cli.NewProjectOptions([]string{file},
			cli.WithWorkingDirectory(filepath.Dir(file)), cli.WithOsEnv, cli.WithProfiles([]string{"*"}))
		if err != nil {
			return err
		}
		project, err := options.LoadProject(context.Background())
		if err != nil {
			return err
		}
		for _, svc := range project.Services {
			for k := range svc.Environment {
				add(k, "compose service "+svc.Name)
			}
		}
	}
	var bad []string
	for name, where := range seen {
		if !known[name] {
			bad = append(bad, fmt.Sprintf("%s (in %s)", name, strings.Join(where, ", ")))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("unknown settings: %s", strings.Join(bad, "; "))
	}
	fmt.Printf("%d GUARDSTREAM_* names, all settings of worker/config.py\n", len(seen))
	return nil
}
