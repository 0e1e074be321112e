package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The packages' arrows point inward, to engine (issue 16): engine and its
// sub-packages import no adapter; engine/wa does not import kv; admin
// imports neither kv nor scripting; wasim depends on nothing of ours. Two
// arrows still break the rule and are listed by name, to be removed by the
// one-orchestrator work: any other arrow fails this test, and so does one
// of these two once it is gone (so the list cannot go stale).
func TestArchitecture_ArrowsPointInward(t *testing.T) {
	adapters := []string{"leadmaster/kv", "leadmaster/kv/devicestore", "leadmaster/engine/wa", "leadmaster/admin", "leadmaster/scripting", "leadmaster/wasim"}
	known := map[string]bool{ // importer -> imported, still to remove

		"leadmaster/admin -> leadmaster/scripting": true,
	}
	forbidden := func(from, to string) bool {
		switch {
		case from == "leadmaster/engine" || strings.HasPrefix(from, "leadmaster/engine/") && from != "leadmaster/engine/wa":
			return slices.Contains(adapters, to) // the domain imports no adapter
		case from == "leadmaster/engine/wa":
			return to == "leadmaster/kv" || to == "leadmaster/admin" || to == "leadmaster/scripting" || to == "leadmaster/wasim"
		case from == "leadmaster/admin":
			return to == "leadmaster/kv" || to == "leadmaster/kv/devicestore" || to == "leadmaster/scripting" || to == "leadmaster/engine/wa" || to == "leadmaster/wasim"
		case from == "leadmaster/wasim" || strings.HasPrefix(from, "leadmaster/wasim/"):
			return strings.HasPrefix(to, "leadmaster/") && !strings.HasPrefix(to, "leadmaster/wasim")
		case from == "leadmaster/kv" || from == "leadmaster/kv/devicestore" || from == "leadmaster/scripting":
			return to == "leadmaster/admin" || to == "leadmaster/engine/wa" || to == "leadmaster/wasim"
		}
		return false
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, to := range f[1:] {
			if !strings.HasPrefix(to, "leadmaster") || !forbidden(f[0], to) {
				continue
			}
			arrow := f[0] + " -> " + to
			seen[arrow] = true
			if !known[arrow] {
				t.Errorf("forbidden import %s", arrow)
			}
		}
	}
	for arrow := range known {
		if !seen[arrow] {
			t.Errorf("%s is gone: remove it from the known list", arrow)
		}
	}
}
