package admin_test

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"testing"

	"leadmaster/admin"
)

// TestOpenAPI: every route of the app is in the OpenAPI document, every
// documented operation is a route, and every path parameter is declared.
func TestOpenAPI(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) {
		o.DemoScan = func(context.Context, string) error { return nil }
	})
	r := h.must(200, h.do("GET", "/api/openapi.json", "", nil))
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Summary    string                      `json:"summary"`
			Responses  map[string]any              `json:"responses"`
			Parameters []struct{ Name, In string } `json:"parameters"`
		} `json:"paths"`
	}
	r.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	param := regexp.MustCompile(`\{(\w+)\}`)
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+param.ReplaceAllString(p, ":$1")] = true
			if op.Summary == "" || len(op.Responses) == 0 {
				t.Errorf("%s %s: no summary or responses", method, p)
			}
			for _, m := range param.FindAllStringSubmatch(p, -1) {
				found := false
				for _, pp := range op.Parameters {
					found = found || pp.In == "path" && pp.Name == m[1]
				}
				if !found {
					t.Errorf("%s %s: path parameter %s not declared", method, p, m[1])
				}
			}
		}
	}
	routes := map[string]bool{}
	for _, rt := range h.srv.App().GetRoutes(true) {
		if rt.Method == "HEAD" || rt.Path == "/" || rt.Path == "/api" {
			continue // HEAD mirrors GET; "/" is the page; "/api" the JSON 404
		}
		routes[rt.Method+" "+rt.Path] = true
	}
	var missing, extra []string
	for r := range routes {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !routes[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes not documented: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("documented but not routes: %v", extra)
	}
	if len(routes) < 30 {
		t.Errorf("only %d routes", len(routes))
	}
}
