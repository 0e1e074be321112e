// Package e2e_test runs the real, unmodified whatsmeow client on the bbolt
// device store against wasim, the loopback WhatsApp simulator. It is its own
// package so the store's unit tests never depend on the simulator's build.
package e2e_test
