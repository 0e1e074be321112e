package scripting_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"leadmaster/scripting"
)

func TestCompile_SyntaxErrorHasLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{"MissingEnd", "function personalize(e)\n  return 'x'\n", 3, "end of file"},
		{"BadToken", "function personalize(e)\n  return 'x' +* 2\nend\n", 2, "near"},
		{"UnclosedString", "function personalize(e)\n\n  return 'abc\nend\n", 3, ""},
		{"GotoMissingLabel", "function personalize(e)\n  goto nowhere\n  return 'x'\nend\n", 2, "nowhere"},
		{"TooManySyntaxLevels", "function personalize(e)\n  return " + strings.Repeat("{", 300) + strings.Repeat("}", 300) + "\nend\n", 2, "syntax levels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scripting.Compile("campana.lua", tc.src)
			var se *scripting.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want *SyntaxError", err, err)
			}
			if se.Line != tc.line {
				t.Errorf("line = %d, want %d (%v)", se.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "campana.lua:") {
				t.Errorf("message %q: want the name, the line and %q", err, tc.msg)
			}
		})
	}
}

func TestCompile_SourceTooLong(t *testing.T) {
	_, err := scripting.CompileWith("big.lua", "-- "+strings.Repeat("x", 2000), scripting.Limits{MaxSource: 1000})
	var se *scripting.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *SyntaxError", err)
	}
}

func TestCompile_TopLevelErrorIsReportedAtUpload(t *testing.T) {
	_, err := scripting.Compile("c.lua", "local x = nil\nlocal y = x.campo\nfunction personalize(e) return 'x' end\n")
	var re *scripting.RuntimeError
	if !errors.As(err, &re) || re.Hook != "main" || re.Line != 2 {
		t.Fatalf("err = %#v, want *RuntimeError in main at line 2", err)
	}
}

func TestCompile_NoHook(t *testing.T) {
	_, err := scripting.Compile("c.lua", "local x = 1\n")
	if !errors.Is(err, scripting.ErrNoHook) {
		t.Fatalf("err = %v, want ErrNoHook", err)
	}
	_, err = scripting.Compile("c.lua", "personalize = 'hola'\n")
	var re *scripting.RuntimeError
	if !errors.As(err, &re) || re.Field != "personalize" || !errors.Is(err, scripting.ErrOutput) {
		t.Fatalf("err = %v, want ErrOutput naming personalize", err)
	}
}

func TestScript_HasHookAndVersion(t *testing.T) {
	src := "function personalize(e) return 'hola' end\nfunction on_reply(m) end\n"
	s := mustCompile(t, src, relaxed)
	for hook, want := range map[string]bool{"personalize": true, "throttle": false, "on_reply": true, "main": false} {
		if got := s.HasHook(hook); got != want {
			t.Errorf("HasHook(%q) = %v, want %v", hook, got, want)
		}
	}
	s2 := mustCompile(t, src, relaxed)
	s3 := mustCompile(t, src+"-- changed\n", relaxed)
	if s.Version() != s2.Version() || len(s.Version()) != 64 {
		t.Errorf("same source, versions %q and %q; want equal sha256 hex", s.Version(), s2.Version())
	}
	if s.Version() == s3.Version() {
		t.Errorf("different sources share version %q", s.Version())
	}
	_, err := s.Throttle(context.Background(), scripting.Stats{})
	if !errors.Is(err, scripting.ErrNoHook) {
		t.Errorf("Throttle on a script without it: err = %v, want ErrNoHook", err)
	}
}
