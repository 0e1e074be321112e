package wa

import (
	"context"
	"fmt"
	"log/slog"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// waLogger adapts an *slog.Logger to whatsmeow's logger. Messages are only
// formatted when their level is enabled: whatsmeow logs every stanza at
// debug level.
type waLogger struct {
	l      *slog.Logger
	module string
}

func newWALog(l *slog.Logger, module string) waLog.Logger {
	return waLogger{l: l, module: module}
}

func (w waLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !w.l.Enabled(ctx, level) {
		return
	}
	w.l.Log(ctx, level, fmt.Sprintf(format, args...), "module", w.module)
}

func (w waLogger) Debugf(format string, args ...any) { w.log(slog.LevelDebug, format, args) }
func (w waLogger) Infof(format string, args ...any)  { w.log(slog.LevelInfo, format, args) }
func (w waLogger) Warnf(format string, args ...any)  { w.log(slog.LevelWarn, format, args) }
func (w waLogger) Errorf(format string, args ...any) { w.log(slog.LevelError, format, args) }

func (w waLogger) Sub(module string) waLog.Logger {
	if w.module != "" {
		module = w.module + "/" + module
	}
	return waLogger{l: w.l, module: module}
}
