// dashboard-check validates Grafana dashboard JSON files against Grafana's own schema types
// (github.com/grafana/grafana-foundation-sdk/go, Apache-2.0). Its strict unmarshal rejects unknown
// fields and wrong types at every level the SDK types: the dashboard, panels, rows, variables,
// annotations, links, the options and fieldConfig.custom of each panel plugin, and Prometheus
// queries. On top of that, panel types and query types the SDK does not know are errors here,
// because for those the SDK would fall back to an untyped bag and check nothing.
//
// Usage: dashboard-check FILE_OR_DIR... (directories: every *.json in them). Exit 0 when every
// file is valid, 1 when any is not (one line per problem on stderr), 2 on usage errors.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check FILE_OR_DIR...")
		os.Exit(2)
	}
	if os.Args[1] == "--version" {
		fmt.Println("dashboard-check (grafana-foundation-sdk/go " + sdkVersion() + ")")
		return
	}
	plugins.RegisterDefaultPlugins()

	files, err := collect(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed := 0
	for _, file := range files {
		problems := check(file)
		for _, p := range problems {
			fmt.Fprintf(os.Stderr, "%s: %s\n", file, p)
		}
		if len(problems) > 0 {
			failed++
		}
	}
	fmt.Printf("%d dashboard(s) checked, %d invalid\n", len(files), failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func collect(args []string) ([]string, error) {
	var files []string
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, arg)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(arg, "*.json"))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("%s: no *.json files", arg)
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}
	return files, nil
}

func check(file string) []string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return []string{err.Error()}
	}
	var dash dashboard.Dashboard
	if problems := errorLines("", dash.UnmarshalJSONStrict(raw)); len(problems) > 0 {
		return problems
	}
	// The SDK's typed-nil error return leaves PanelOrRowPanel empty after a successful strict
	// unmarshal, so panels are walked again from the raw JSON.
	var doc struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for i, rawPanel := range doc.Panels {
		where := fmt.Sprintf("panels[%d]", i)
		var head struct {
			Type   string            `json:"type"`
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(rawPanel, &head); err != nil {
			problems = append(problems, where+": "+err.Error())
			continue
		}
		if head.Type != "row" {
			problems = append(problems, checkPanel(where, rawPanel)...)
			continue
		}
		for j, inner := range head.Panels {
			problems = append(problems, checkPanel(fmt.Sprintf("%s.panels[%d]", where, j), inner)...)
		}
	}
	return problems
}

// checkPanel rejects what the dashboard-level strict unmarshal lets through: a panel type with no
// registered plugin (its options would be an untyped map), a query whose type is unknown (an
// untyped bag: no datasource type on the query), and unknown fields in fieldConfig (decoded
// leniently by the panel itself).
func checkPanel(where string, raw json.RawMessage) []string {
	var panel dashboard.Panel
	problems := errorLines(where+".", panel.UnmarshalJSONStrict(raw))
	if _, found := cog.ConfigForPanelcfgVariant(panel.Type); !found {
		problems = append(problems, fmt.Sprintf("%s: unknown panel type %q", where, panel.Type))
	}
	for i, target := range panel.Targets {
		if _, unknown := target.(variants.UnknownDataquery); unknown {
			problems = append(problems, fmt.Sprintf("%s.targets[%d]: query of unknown type (set datasource.type)", where, i))
		}
	}
	var fields struct {
		FieldConfig json.RawMessage `json:"fieldConfig"`
	}
	if err := json.Unmarshal(raw, &fields); err == nil && len(fields.FieldConfig) > 0 {
		var fc dashboard.FieldConfigSource
		problems = append(problems, errorLines(where+".fieldConfig.", fc.UnmarshalJSONStrict(fields.FieldConfig))...)
	}
	return problems
}

// errorLines: one problem per line (cog joins its build errors with newlines).
func errorLines(prefix string, err error) []string {
	if isNil(err) {
		return nil
	}
	var lines []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.TrimSpace(line) != "" {
			lines = append(lines, prefix+line)
		}
	}
	return lines
}

// isNil: the SDK returns its error list as a typed nil (cog.BuildErrors(nil)), which is a non-nil
// error interface; an empty list means no error.
func isNil(err error) bool {
	if err == nil {
		return true
	}
	if list, ok := err.(cog.BuildErrors); ok {
		return len(list) == 0
	}
	return false
}

func sdkVersion() string {
	// the module version is stamped in by the build script (-ldflags -X main.version=...)
	if version != "" {
		return version
	}
	return "devel"
}

var version string
