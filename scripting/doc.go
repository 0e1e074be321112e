// Package scripting runs operators' Lua scripts (gopher-lua, Lua 5.1) for
// campaigns: personalize(envio) renders each message, throttle(stats) slows
// or pauses sending, on_reply(msg) handles replies (opt-out, tags). It knows
// nothing of the rest of LeadMaster: inputs and outputs are the plain types
// of this package, and the engine adapts them.
//
// Compile parses and compiles a script once; its prototype is shared by a
// pool of Lua states. Each hook call takes a state from the pool, gives it a
// fresh global environment, runs the script's top level (so keep it to
// definitions; see below for when it runs only once) and then the hook.
// Nothing a call does is visible to a later call or another campaign:
// globals and the top level's locals are made anew for each call, the
// libraries are read-only proxies shared by all states, the
// string metatable is locked, setmetatable only takes tables, and rawset,
// getfenv/setfenv, load*, dofile, require, module, collectgarbage, newproxy,
// print, os, io, debug, package and coroutine do not exist. Whatever a script
// needs across calls comes in through its inputs.
//
// Three savings keep that promise by checking, not trusting:
//
//   - A script whose top level only defines functions and constants (checked
//     on the bytecode: no call and no table constructor at the top level,
//     though reading globals such as lm.render into locals is fine, and no
//     assignment to an upvalue anywhere) runs its top level once per
//     state; after each call the globals are restored exactly to what the
//     top level left, or the state forgets them and runs it again next time.
//     examples/personalize.lua and throttle.lua are such scripts.
//   - Otherwise a pooled state reuses the previous call's global environment
//     only after emptying it and finding it empty.
//   - The envío table is refilled in place only when it holds exactly the
//     keys and values it was given, with no metatable.
//
// # Limits
//
// Every call runs under Limits (DefaultLimits unless CompileWith says
// otherwise): a wall-clock time limit, a bound on Go heap growth, on any
// string a builtin or '..' may build, on the returned text, on the call stack
// and the data stack. A call that breaks one fails with a *RuntimeError
// (errors.Is ErrTimeout, ErrMemory or ErrLimit); its Lua state is discarded
// and the pool makes a new one. Script errors never panic the process.
//
// # Caveats
//
//   - gopher-lua checks for cancellation only between VM instructions, and
//     nothing inside a Go builtin is interruptible. So every builtin that can
//     do unbounded work is replaced: string.rep, string.format (Lua 5.1
//     widths), table.concat, unpack, string.byte and table.sort check sizes
//     before working (unpack and string.byte return at most 8000 values,
//     table.sort takes at most 16384 elements); inputs larger than
//     Limits.MaxString are refused; string.find/match/gmatch/gsub use this package's own
//     Lua 5.1 pattern matcher, which checks the deadline every 4096 steps and
//     has a step budget and a depth limit (gopher-lua's never stops on
//     "(.-)(.-)b" against a long subject); gsub is linear.
//   - The '..' operator is one VM instruction with no size check: Compile
//     rewrites every concatenation into a call of a bounded Go function
//     (rewrite.go) that scripts cannot see or replace.
//   - The memory bound is approximate. Go cannot attribute allocations to a
//     goroutine, so a call that runs longer than a millisecond has the Go
//     heap sampled every millisecond, and is stopped when the heap has grown
//     by more than Limits.MaxMemory since its first sample. Short calls are
//     never sampled (they cannot allocate much), and a long call can be
//     blamed for a concurrent allocation elsewhere in the process.
//   - The time limit is wall-clock time. On an overloaded host a call can be
//     descheduled past it and fail with ErrTimeout without any fault of the
//     script; the engine may retry such an envío once before marking it
//     fallido.
//   - Randomness is per call: math.random, lm.random, lm.pick and spintax
//     draw from a PCG generator seeded with the envío (campaign, id, phone),
//     so a retry renders the same text; math.randomseed reseeds only that
//     call's generator. Throttle calls are seeded by campaign and time (to
//     the second), on_reply calls by campaign, phone and text.
//   - Host code never evaluates script values: outputs are read with raw
//     access and type checks (no __index, __tostring or __eq runs outside the
//     limits), and error objects other than strings and numbers are reported
//     by type.
//   - Differences from stock gopher-lua that follow Lua 5.1: '^' is literal
//     in gmatch; string.find honours init with an empty pattern; %f frontier
//     patterns work; malformed patterns fail only when reached; a trailing
//     '%' in a gsub replacement is an error (as in Lua 5.2). pairs() over a
//     library table (string, table, math, lm) yields nothing: they are
//     proxies.
//
// The Lua API for operators is described in README.md in this directory.
package scripting
