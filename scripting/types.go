package scripting

import (
	"runtime"
	"time"
)

// Hook names, as the script defines them (global functions).
const (
	HookPersonalize = "personalize"
	HookThrottle    = "throttle"
	HookOnReply     = "on_reply"
)

// Hooks lists every hook a script may define.
var Hooks = []string{HookPersonalize, HookThrottle, HookOnReply}

// Envio is the input of personalize: one message to one phone.
// The script sees it as a table with the lower-case field names in brackets.
type Envio struct {
	ID        string            // [id] the envío key; part of the random seed
	Telefono  string            // [telefono] E.164, e.g. "+525512345678"
	Nombre    string            // [nombre]
	Variables map[string]string // [variables] the CSV columns of this envío
	Campana   string            // [campana] campaign id; part of the random seed
	Plantilla string            // [plantilla] the campaign's message template
	Attempt   int               // [attempt] 1 on the first try; not part of the seed
	Now       time.Time         // the clock for lm.now/lm.date; zero means time.Now()
	TimeZone  string            // [zona] IANA name of the campaign's time zone; "" means UTC
}

// Result is what personalize decided for one envío.
type Result struct {
	Text   string // the message to send; empty when Skip
	Skip   bool   // do not send: the envío becomes omitido
	Reason string // why it was skipped (operator's words), or ""
}

// Stats is the input of throttle: how the campaign is sending right now.
type Stats struct {
	Campana      string    // [campana]
	SentToday    int       // [sent_today] sent since local midnight
	SentLastHour int       // [sent_last_hour]
	ErrorStreak  int       // [error_streak] consecutive failed sends
	Cupo         int       // [cupo] daily quota; 0 means none
	Disponible   int       // [disponible] quota left today
	Now          time.Time // local time fields (hour, minute, weekday, weekend, date, time) derive from it; zero means time.Now()
	TimeZone     string    // [zona] IANA name; "" means UTC
}

// ThrottleDecision is what throttle decided. The zero value changes nothing.
type ThrottleDecision struct {
	Delay      time.Duration // the number waits this much longer before its next send
	PauseUntil time.Time     // this campaign sends nothing until then (the cliente's others go on); zero means no pause
	Skip       bool          // not this turn: the envío stays pendiente, the campaign waits its usual delay (engine.ThrottleDecision)
	Reason     string
}

// Reply is the input of on_reply: a message received from a recipient.
type Reply struct {
	Telefono string    // [telefono] sender, E.164
	Nombre   string    // [nombre] the envío's nombre, if known
	Texto    string    // [texto] the text received
	Campana  string    // [campana]
	EnvioID  string    // [envio] the envío replied to, if known
	Now      time.Time // zero means time.Now()
	TimeZone string    // [zona]
}

// ReplyAction is what on_reply decided. The zero value does nothing.
type ReplyAction struct {
	OptOut bool     // add the phone to the cliente's suppression list
	Tags   []string // tags for the envío
	Reason string
}

// Limits bound what one hook call may do. Zero fields take the defaults in
// DefaultLimits.
type Limits struct {
	Timeout   time.Duration // wall time per call (including the script's top level); default 100ms
	MaxMemory int64         // Go heap growth tolerated during one call, in bytes; default 32 MiB
	MaxString int           // longest string any builtin or '..' may build, in bytes; default 1 MiB
	MaxText   int           // longest text personalize may return, in bytes; default 64 KiB
	MaxSource int           // longest source accepted by Compile, in bytes; default 256 KiB
	CallStack int           // Lua call frames; deeper recursion fails with "stack overflow"; default 200
	Registry  int           // Lua data stack slots, at most; default 65536
	PoolSize  int           // idle Lua states kept per Script; default GOMAXPROCS
}

// DefaultLimits are the limits Compile uses.
var DefaultLimits = Limits{
	Timeout:   100 * time.Millisecond,
	MaxMemory: 32 << 20,
	MaxString: 1 << 20,
	MaxText:   64 << 10,
	MaxSource: 256 << 10,
	CallStack: 200,
	Registry:  1 << 16,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxMemory <= 0 {
		l.MaxMemory = d.MaxMemory
	}
	if l.MaxString <= 0 {
		l.MaxString = d.MaxString
	}
	if l.MaxText <= 0 {
		l.MaxText = d.MaxText
	}
	if l.MaxSource <= 0 {
		l.MaxSource = d.MaxSource
	}
	if l.CallStack <= 0 {
		l.CallStack = d.CallStack
	}
	if l.Registry <= 0 {
		l.Registry = d.Registry
	}
	if l.PoolSize <= 0 {
		l.PoolSize = runtime.GOMAXPROCS(0)
	}
	return l
}
