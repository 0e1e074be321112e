package engine

import (
	"context"
	"fmt"
	"time"
)

// ReachLock says whether a cliente's number may start new chats. WhatsApp
// locks a number that messaged too many new contacts out of new chats
// until a time it names (the reach-out timelock) and answers every message
// to a new contact meanwhile with error 463; retrying makes it worse and
// can end in a forced re-pair. While locked the cliente keeps sending to
// warm recipients (see Store.HasChat, Gateway.HasChat) and holds cold
// ones as pendiente until Until.
type ReachLock struct {
	Cliente string    `json:"cliente"`
	Active  bool      `json:"activo"`
	Until   time.Time `json:"hasta,omitzero"`
	// Source: ReachTimelock (the server's notification says so and until
	// when) or ReachAck463 (only 463s came: Config.ReachLockDefault).
	Source string `json:"origen,omitempty"`
	// Enforcement is the server's enforcement type, if it named one.
	Enforcement string    `json:"tipo,omitempty"`
	At          time.Time `json:"at"`
}

// Sources of a reach lock.
const (
	ReachTimelock = "timelock"
	ReachAck463   = "ack_463"
)

// reasonReachHeld is the reason of an envío refused with 463 (Classify's
// "ack_<code>"): while a lock holds it is not sent again, even to a warm
// recipient.
const reasonReachHeld = "ack_463"

// LockedAt says whether the lock holds at now.
func (l ReachLock) LockedAt(now time.Time) bool { return l.Active && now.Before(l.Until) }

// ReachNotice is the server's reach-out timelock notification, as the
// Gateway reports it: Active with its end, or ended.
type ReachNotice struct {
	Cliente     string
	Active      bool
	Until       time.Time
	Enforcement string
}

// ReachChanged takes the server's timelock notification. It implements
// Inbound.
func (e *Engine) ReachChanged(n ReachNotice) {
	l := ReachLock{Cliente: n.Cliente, Active: n.Active, Source: ReachTimelock, Enforcement: n.Enforcement, At: e.cfg.Clock.Now()}
	if n.Active {
		l.Until = n.Until
		if !l.Until.After(l.At) {
			// An active lock without a usable end: hold new chats for the
			// conservative default rather than not at all.
			l.Until = l.At.Add(e.cfg.ReachLockDefault)
		}
	}
	e.reachMu.Lock()
	defer e.reachMu.Unlock()
	if err := e.setReachLocked(context.Background(), l); err != nil {
		e.log.Error("reach lock", "cliente", n.Cliente, "err", err)
	}
}

// reachLocked opens a lock after a 463 of a send that started at sentAt,
// unless one already holds (a timelock's end is the server's word; 463s
// do not extend it) or the send started before the last lock ended (its
// 463 belongs to that lock, not to a new one).
func (e *Engine) reachLocked(ctx context.Context, cliente string, sentAt time.Time) error {
	e.reachMu.Lock()
	defer e.reachMu.Unlock()
	now := e.cfg.Clock.Now()
	if cur := e.Reach(cliente); cur.LockedAt(now) || (!cur.Active && !cur.At.IsZero() && !sentAt.After(cur.At)) {
		return nil
	}
	return e.setReachLocked(ctx, ReachLock{Cliente: cliente, Active: true, Until: now.Add(e.cfg.ReachLockDefault), Source: ReachAck463, At: now})
}

// setReach is setReachLocked under reachMu.
func (e *Engine) setReach(ctx context.Context, l ReachLock) error {
	e.reachMu.Lock()
	defer e.reachMu.Unlock()
	return e.setReachLocked(ctx, l)
}

// setReachLocked stores and journals a lock change, publishes it, and
// wakes the worker (a lock that ends frees the cold envíos). An inactive
// lock on an unlocked cliente changes nothing. e.reachMu must be held:
// checking the lock and changing it is one step.
func (e *Engine) setReachLocked(ctx context.Context, l ReachLock) error {
	// A notice may come before Run has read the stored locks: read them
	// first, or an end would be ignored and the stored lock loaded over it.
	if err := e.loadReachLocked(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	cur, had := e.reach[l.Cliente]
	e.mu.Unlock()
	if !l.Active && (!had || !cur.Active) {
		return nil
	}
	if err := e.store.SaveReachLock(ctx, l); err != nil {
		return fmt.Errorf("save reach lock of %s: %w", l.Cliente, err)
	}
	e.mu.Lock()
	e.reach[l.Cliente] = l
	e.mu.Unlock()
	ev := EventReachUnlocked
	if l.Active {
		ev = EventReachLocked
		e.log.Warn("WhatsApp locked this number out of new chats: warm recipients only until the lock ends",
			"cliente", l.Cliente, "until", l.Until, "source", l.Source, "enforcement", l.Enforcement)
	} else {
		e.log.Info("new chats allowed again", "cliente", l.Cliente, "source", l.Source)
	}
	lc := l
	e.events.Publish(Event{Type: "reach", At: l.At, Cliente: l.Cliente, Status: ev, Reason: l.Source, Reach: &lc})
	e.poke(l.Cliente)
	return nil
}

// Reach is a cliente's current reach lock (zero: never locked).
func (e *Engine) Reach(cliente string) ReachLock {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reach[cliente]
}

// ReachHolding is the cliente's reach lock if it holds now (the engine's
// clock), for the session view and the metrics.
func (e *Engine) ReachHolding(cliente string) (ReachLock, bool) {
	l := e.Reach(cliente)
	return l, l.LockedAt(e.cfg.Clock.Now())
}

// expireReach ends a lock whose time is up, so that its end is journaled
// and seen; called by the worker when it wakes at Until.
func (e *Engine) expireReach(ctx context.Context, cliente string) {
	now := e.cfg.Clock.Now()
	l := e.Reach(cliente)
	if !l.Active || now.Before(l.Until) {
		return
	}
	end := ReachLock{Cliente: cliente, Active: false, Source: l.Source, Enforcement: l.Enforcement, At: now}
	if err := e.setReach(ctx, end); err != nil {
		e.log.Error("end reach lock", "cliente", cliente, "err", err)
	}
}

// loadReachLocked reads the stored reach locks into e.reach once. e.reachMu
// must be held.
func (e *Engine) loadReachLocked(ctx context.Context) error {
	if e.reachLoaded {
		return nil
	}
	locks, err := e.store.ReachLocks(ctx)
	if err != nil {
		return fmt.Errorf("reach locks: %w", err)
	}
	e.mu.Lock()
	for c, l := range locks {
		if _, ok := e.reach[c]; !ok {
			e.reach[c] = l
		}
	}
	e.mu.Unlock()
	e.reachLoaded = true
	return nil
}
