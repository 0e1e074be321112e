// Package admin is LeadMaster's local admin API and page: a thin fiber app
// over the engine. Handlers decode, validate, call the engine or the store
// and encode; HTTP status codes are chosen in one place (errors.go). The
// whole route table is Server.routes; openapi.json documents it, and a test
// checks that both agree.
//
// admin imports engine (and scripting for compile checks and the preview)
// but never kv or whatsmeow: the persistence it needs is the Store and
// Outbox interfaces, which kv.DB implements, and the WhatsApp side is
// engine.Sessions.
//
// # Auth
//
// Every /api route needs a token, as "Authorization: Bearer <token>" or
// "?token=" (EventSource and <img src> cannot send headers): the admin
// token, or a cliente's API key, which acts only under its own
// /api/clientes/:id (403 for another cliente's path, 404 for another
// cliente's campaign or import job under its own path). Only SHA-256
// hashes are stored; the admin token is compared in constant time. After
// Options.LockoutAfter bad tokens an address is refused (429, Retry-After)
// for a time that doubles per further failure.
//
// # Caveats
//
//   - The lockout is per remote address. Behind a reverse proxy every client
//     has the proxy's address, so bad tokens from one lock out all; keep the
//     API on loopback or give the proxy its own limit.
//   - Import jobs live in memory: after a restart GET …/imports/:job is 404.
//     An import is all-or-nothing (kv), and a shutdown cancels a running one,
//     so the answer to a lost job is to upload again.
//   - Envío uploads are read whole into memory (fasthttp buffers request
//     bodies), bounded by Options.MaxUpload.
//   - SSE subscribers that do not keep up lose events (the engine's broker
//     never blocks; leadmaster_events_dropped_total counts them); a page
//     should re-read state on reconnect.
//   - Webhooks are delivered at least once: an item acknowledged by the
//     receiver but not yet removed from the outbox when the process dies is
//     sent again with the same X-LeadMaster-Delivery id, which receivers use
//     to de-duplicate. One dispatcher delivers every cliente's queue in turn,
//     so a receiver that hangs (up to the 10 s request timeout) delays the
//     others.
//   - The session routes answer 503 when Options.Sessions is nil, the webhook
//     routes when Options.Outbox is nil.
package admin
