package scripting

import (
	"errors"
	"fmt"
)

// Sentinel causes of a failed call. Test them with errors.Is on the error a
// hook method returns; the concrete type is *RuntimeError.
var (
	// ErrNoHook: the script does not define the hook that was called.
	ErrNoHook = errors.New("hook not defined")
	// ErrTimeout: the call ran past Limits.Timeout.
	ErrTimeout = errors.New("time limit exceeded")
	// ErrMemory: the Go heap grew by more than Limits.MaxMemory during the call.
	ErrMemory = errors.New("memory limit exceeded")
	// ErrLimit: another bound was hit (call stack, data stack, string length,
	// pattern complexity, table size for sort/unpack).
	ErrLimit = errors.New("resource limit exceeded")
	// ErrOutput: the hook returned a value of the wrong shape.
	ErrOutput = errors.New("invalid hook output")
)

// SyntaxError is returned by Compile when the source does not parse or
// compile. Line is 1-based; 0 when unknown (e.g. an unexpected end of file).
type SyntaxError struct {
	Script string
	Line   int
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Script, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Script, e.Msg)
}

// RuntimeError is a failed hook call (or a failed top level while compiling,
// with Hook "main"). The engine marks the envío fallido with reason "script",
// unless errors.Is(err, context.Canceled) or context.DeadlineExceeded says the
// caller's own context ended.
type RuntimeError struct {
	Script string // name given to Compile
	Hook   string // "personalize", "throttle", "on_reply" or "main"
	Line   int    // line of the script where it failed, 0 if unknown
	Field  string // for ErrOutput: the offending field of the returned table, if any
	Msg    string // readable message, without the "name:line:" prefix
	Cause  error  // ErrTimeout, ErrMemory, ErrLimit, ErrOutput, ErrNoHook, the caller's ctx.Err(), or nil for a plain Lua error
}

func (e *RuntimeError) Error() string {
	where := e.Script
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.Script, e.Line)
	}
	return fmt.Sprintf("%s: %s: %s", where, e.Hook, e.Msg)
}

func (e *RuntimeError) Unwrap() error { return e.Cause }

// Kind names the cause for metrics and logs: "timeout", "memory", "limit",
// "output", "nohook", "canceled" or "error".
func (e *RuntimeError) Kind() string {
	switch {
	case e.Cause == nil:
		return "error"
	case errors.Is(e.Cause, ErrTimeout):
		return "timeout"
	case errors.Is(e.Cause, ErrMemory):
		return "memory"
	case errors.Is(e.Cause, ErrLimit):
		return "limit"
	case errors.Is(e.Cause, ErrOutput):
		return "output"
	case errors.Is(e.Cause, ErrNoHook):
		return "nohook"
	default:
		return "canceled"
	}
}
