// Package e2e holds the end-to-end proof of the send engine (issue 9,
// "What it must show"): the engine on a real kv file, the real whatsmeow
// client through engine/wa, and the wasim simulator as WhatsApp. The
// simulator's ledger is the ground truth every assertion compares the
// stored envíos against. It also holds the engine benchmarks.
//
// Everything is in the test files; this package has no API.
package e2e
