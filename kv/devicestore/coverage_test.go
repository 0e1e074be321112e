package devicestore_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/store"
)

// TestConformance_CallsEveryMethod keeps the suite honest: every method of
// store.AllStores and every container operation must be called by the
// shared conformance table (conformance_test.go), so both stores are held to
// each of them.
func TestConformance_CallsEveryMethod(t *testing.T) {
	src, err := os.ReadFile("conformance_test.go")
	mustOK(t, err)
	var methods []string
	for _, it := range []reflect.Type{reflect.TypeFor[store.AllStores](), reflect.TypeFor[container]()} {
		for m := range it.Methods() {
			methods = append(methods, m.Name)
		}
	}
	for _, name := range methods {
		if !strings.Contains(string(src), "."+name+"(") {
			t.Errorf("conformance suite never calls %s", name)
		}
	}
	t.Logf("%d methods, each called by the conformance suite", len(methods))
}
