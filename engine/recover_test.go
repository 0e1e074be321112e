package engine_test

import (
	"context"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// An envío left in enviando by a crash goes back to pendiente when the
// engine recovers (not when the file opens), with its message id, due
// first, and journaled.
func TestRecover_EnviandoBackToPendienteWithItsID(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	camp := kvtest.MustCampaign(t, db, "k", 3)
	r := engine.Ref{Campaign: camp, Seq: 2}
	if err := db.Apply(ctx, engine.Transition{Envio: r, From: engine.Pendiente, To: engine.Enviando, Text: "x", MsgID: engine.MessageID(db.Secret(), r)}); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Envio(ctx, r)
	db.Close()

	db, err = kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if still, _ := db.Envio(ctx, r); still.State != engine.Enviando {
		t.Fatalf("after reopen, before the engine: %s, want enviando (recovery is the engine's, once)", still.State)
	}
	n, err := engine.New(db, nil, engine.Config{}).Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want 1", n, err)
	}
	after, _ := db.Envio(ctx, r)
	if after.State != engine.Pendiente || after.MsgID != before.MsgID || after.Reason != engine.ReasonRecovery {
		t.Fatalf("after reopen: %+v, want pendiente with msg id %s and reason recovery", after, before.MsgID)
	}
	if d, _ := db.NextDue(ctx, camp, time.Now()); d.Envio != r {
		t.Fatalf("recovered envío is not due first: %+v", d)
	}
	tail, _ := db.JournalTail(ctx, 1)
	if tail[0].Reason != engine.ReasonRecovery || tail[0].MsgID != before.MsgID {
		t.Fatalf("last journal record %+v, want the recovery", tail[0])
	}
	if rep, err := db.Verify(ctx, nil); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
