package scripting

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func TestConstantTopLevel(t *testing.T) {
	for src, want := range map[string]bool{
		"function personalize(e) return 'x' end":                                             true,
		"local function g(h) return h end\nfunction personalize(e) return g('x') end":        true,
		"local A, B = 'a', 2\nlocal C\nfunction personalize(e) return A .. B end":            true,
		"local T = {}\nfunction personalize(e) return 'x' end":                               false, // a table: hooks could change it
		"local n = 0\nfunction personalize(e) n = n + 1 return 'x' end":                      false, // assigns an upvalue
		"function personalize(e) local n = 0 local f = function() n = 1 end return 'x' end":  false,
		"local r = lm.render\nfunction personalize(e) return r('x') end":                     true, // library values are immutable
		"local G, S = _G, string\nfunction personalize(e) G.x = S.upper('x') return G.x end": true,
		"local x = math.random()\nfunction personalize(e) return 'x' end":                    false, // calls
		"if x then end\nfunction personalize(e) return 'x' end":                              false,
	} {
		proto, err := compileProto("t.lua", src, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := constantTopLevel(proto); got != want {
			t.Errorf("constantTopLevel(%q) = %v, want %v", src, got, want)
		}
	}
	for name, want := range map[string]bool{"personalize.lua": true, "throttle.lua": true, "optout.lua": false, "campaign.lua": false} {
		src, err := os.ReadFile("../examples/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := CompileWith(name, string(src), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if s.constTop != want {
			t.Errorf("%s: constTop = %v, want %v", name, s.constTop, want)
		}
	}
}

// TestStuckCallsAreCounted: a builtin that ignores cancellation (none of
// ours does; this one is made for the test) keeps its call running past the
// limit, and Metrics.Stuck says so.
func TestStuckCallsAreCounted(t *testing.T) {
	lim := Limits{Timeout: 10 * time.Millisecond}.withDefaults()
	var stuck atomic.Int64
	st := newState(&lim, sharedLibrary())
	st.stuck = &stuck
	st.grace = 20 * time.Millisecond
	defer st.close()
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		st.begin(context.Background(), lim.Timeout)
		st.L.Push(st.L.NewFunction(func(L *lua.LState) int { <-release; return 0 }))
		err := st.L.PCall(0, 0, nil)
		if cause := st.end(); cause != nil {
			err = cause
		}
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for stuck.Load() == 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	close(release)
	if err := <-done; !errors.Is(err, ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
	if stuck.Load() == 0 {
		t.Error("the stuck call was not counted")
	}
}
