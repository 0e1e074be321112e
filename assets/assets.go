// Package assets holds the operator's page, embedded in the binary: plain
// HTML, CSS and JavaScript (ES modules), no build step. admin serves FS.
package assets

import "embed"

// FS holds index.html, app.js and style.css.
//
//go:embed index.html app.js style.css
var FS embed.FS
