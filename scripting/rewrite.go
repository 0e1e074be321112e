package scripting

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
)

// The '..' operator is compiled by gopher-lua into one VM instruction that
// joins all its operands with no size check and no way to interrupt it: a
// loop such as `s = s..s..s..s..s..s..s..s` reaches gigabytes between two
// deadline checks, and a failed allocation kills the process. So before
// compiling, every concatenation a..b..c is rewritten into a call of a Go
// function cat(a, b, c) (luaConcat) that checks the length first. cat is a
// local of the main chunk whose name ("\x00cat") no Lua source can spell, so
// scripts can neither shadow nor reassign it; it reaches nested functions as
// an upvalue. The main chunk receives it as its first vararg.
//
// The same walk bounds nesting: gopher-lua's compiler recurses on the tree,
// and Lua itself refuses more than 200 syntax levels.

const (
	catName      = "\x00cat"
	maxSyntaxLvl = 200
)

type rewriter struct {
	maxString int
}

type depthError struct{ line int }

func (e *depthError) Error() string { return "chunk has too many syntax levels" }

// rewriteChunk rewrites the chunk in place and prepends `local cat = ...`.
func rewriteChunk(chunk []ast.Stmt, maxString int) (out []ast.Stmt, err error) {
	r := &rewriter{maxString: maxString}
	defer func() {
		if rec := recover(); rec != nil {
			de, ok := rec.(*depthError)
			if !ok {
				panic(rec)
			}
			err = de
		}
	}()
	r.stmts(chunk, 0)
	decl := &ast.LocalAssignStmt{Names: []string{catName}, Exprs: []ast.Expr{&ast.Comma3Expr{}}}
	return append([]ast.Stmt{decl}, chunk...), nil
}

func (r *rewriter) deeper(depth int, line int) int {
	if depth+1 > maxSyntaxLvl {
		panic(&depthError{line: line})
	}
	return depth + 1
}

func (r *rewriter) stmts(list []ast.Stmt, depth int) {
	for _, s := range list {
		r.stmt(s, depth)
	}
}

func (r *rewriter) exprs(list []ast.Expr, depth int) {
	for i := range list {
		list[i] = r.expr(list[i], depth)
	}
}

func (r *rewriter) stmt(s ast.Stmt, depth int) {
	depth = r.deeper(depth, s.Line())
	switch s := s.(type) {
	case *ast.AssignStmt:
		r.exprs(s.Lhs, depth)
		r.exprs(s.Rhs, depth)
	case *ast.LocalAssignStmt:
		r.exprs(s.Exprs, depth)
	case *ast.FuncCallStmt:
		s.Expr = r.expr(s.Expr, depth)
	case *ast.DoBlockStmt:
		r.stmts(s.Stmts, depth)
	case *ast.WhileStmt:
		s.Condition = r.expr(s.Condition, depth)
		r.stmts(s.Stmts, depth)
	case *ast.RepeatStmt:
		s.Condition = r.expr(s.Condition, depth)
		r.stmts(s.Stmts, depth)
	case *ast.IfStmt:
		s.Condition = r.expr(s.Condition, depth)
		r.stmts(s.Then, depth)
		r.stmts(s.Else, depth)
	case *ast.NumberForStmt:
		s.Init = r.expr(s.Init, depth)
		s.Limit = r.expr(s.Limit, depth)
		if s.Step != nil {
			s.Step = r.expr(s.Step, depth)
		}
		r.stmts(s.Stmts, depth)
	case *ast.GenericForStmt:
		r.exprs(s.Exprs, depth)
		r.stmts(s.Stmts, depth)
	case *ast.FuncDefStmt:
		if s.Name != nil {
			if s.Name.Func != nil {
				s.Name.Func = r.expr(s.Name.Func, depth)
			}
			if s.Name.Receiver != nil {
				s.Name.Receiver = r.expr(s.Name.Receiver, depth)
			}
		}
		r.function(s.Func, depth)
	case *ast.ReturnStmt:
		r.exprs(s.Exprs, depth)
	case *ast.BreakStmt, *ast.LabelStmt, *ast.GotoStmt:
	default:
		panic(fmt.Sprintf("scripting: unknown statement %T", s))
	}
}

func (r *rewriter) function(f *ast.FunctionExpr, depth int) {
	if f != nil {
		r.stmts(f.Stmts, depth)
	}
}

func (r *rewriter) expr(e ast.Expr, depth int) ast.Expr {
	if e == nil {
		return nil
	}
	depth = r.deeper(depth, e.Line())
	switch x := e.(type) {
	case *ast.StringConcatOpExpr:
		return r.concat(x, depth)
	case *ast.AttrGetExpr:
		x.Object = r.expr(x.Object, depth)
		x.Key = r.expr(x.Key, depth)
	case *ast.TableExpr:
		for _, f := range x.Fields {
			f.Key = r.expr(f.Key, depth)
			f.Value = r.expr(f.Value, depth)
		}
	case *ast.FuncCallExpr:
		x.Func = r.expr(x.Func, depth)
		x.Receiver = r.expr(x.Receiver, depth)
		r.exprs(x.Args, depth)
	case *ast.LogicalOpExpr:
		x.Lhs = r.expr(x.Lhs, depth)
		x.Rhs = r.expr(x.Rhs, depth)
	case *ast.RelationalOpExpr:
		x.Lhs = r.expr(x.Lhs, depth)
		x.Rhs = r.expr(x.Rhs, depth)
	case *ast.ArithmeticOpExpr:
		x.Lhs = r.expr(x.Lhs, depth)
		x.Rhs = r.expr(x.Rhs, depth)
	case *ast.UnaryMinusOpExpr:
		x.Expr = r.expr(x.Expr, depth)
	case *ast.UnaryNotOpExpr:
		x.Expr = r.expr(x.Expr, depth)
	case *ast.UnaryLenOpExpr:
		x.Expr = r.expr(x.Expr, depth)
	case *ast.FunctionExpr:
		r.function(x, depth)
	case *ast.TrueExpr, *ast.FalseExpr, *ast.NilExpr, *ast.NumberExpr, *ast.StringExpr,
		*ast.Comma3Expr, *ast.IdentExpr:
	default:
		panic(fmt.Sprintf("scripting: unknown expression %T", e))
	}
	return e
}

// concat flattens a..(b..c) into cat(a, b, c). Runs of string constants are
// joined at compile time when short enough.
func (r *rewriter) concat(x *ast.StringConcatOpExpr, depth int) ast.Expr {
	var ops []ast.Expr
	var e ast.Expr = x
	for {
		c, ok := e.(*ast.StringConcatOpExpr)
		if !ok {
			break
		}
		ops = append(ops, r.expr(c.Lhs, depth))
		e = c.Rhs
	}
	ops = append(ops, r.expr(e, depth))

	folded := ops[:0:0]
	for _, op := range ops {
		if s, ok := op.(*ast.StringExpr); ok && len(folded) > 0 {
			if prev, ok := folded[len(folded)-1].(*ast.StringExpr); ok && len(prev.Value)+len(s.Value) <= r.maxString {
				joined := &ast.StringExpr{Value: prev.Value + s.Value}
				joined.SetLine(prev.Line())
				joined.SetLastLine(s.LastLine())
				folded[len(folded)-1] = joined
				continue
			}
		}
		folded = append(folded, op)
	}
	if len(folded) == 1 {
		if _, ok := folded[0].(*ast.StringExpr); ok {
			return folded[0]
		}
	}
	fn := &ast.IdentExpr{Value: catName}
	fn.SetLine(x.Line())
	call := &ast.FuncCallExpr{Func: fn, Args: folded}
	call.SetLine(x.Line())
	call.SetLastLine(x.LastLine())
	return call
}

// constantTopLevel reports whether running the main chunk of proto can only
// define functions and constants: its instructions load constants, make
// closures, read globals and fields, and set globals (no call, no table
// constructor, no arithmetic that could reach a metamethod), and no
// function anywhere assigns an upvalue. What such a top level can read is
// immutable (library functions, the read-only library proxies, its own
// functions and constants) or the environment itself, which restoreKept
// puts back after every call; no script code runs while it reads (the only
// metatables reachable have table __index). So the top level yields the
// same environment on every run and the locals the hooks capture can never
// change: a state may run it once and, after each call, only restore the
// globals (state.restoreKept) instead of running it again.
func constantTopLevel(proto *lua.FunctionProto) bool {
	for _, inst := range proto.Code {
		switch int(inst >> 26) {
		case lua.OP_MOVE, lua.OP_MOVEN, lua.OP_LOADK, lua.OP_LOADBOOL, lua.OP_LOADNIL,
			lua.OP_CLOSURE, lua.OP_SETGLOBAL, lua.OP_RETURN, lua.OP_VARARG, lua.OP_CLOSE, lua.OP_NOP,
			lua.OP_GETGLOBAL, lua.OP_GETTABLE, lua.OP_GETTABLEKS:
		default:
			return false
		}
	}
	return !assignsUpvalue(proto)
}

func assignsUpvalue(p *lua.FunctionProto) bool {
	for _, inst := range p.Code {
		if int(inst>>26) == lua.OP_SETUPVAL {
			return true
		}
	}
	for _, child := range p.FunctionPrototypes {
		if assignsUpvalue(child) {
			return true
		}
	}
	return false
}
