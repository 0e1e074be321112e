package assets_test

import (
	"io/fs"
	"strings"
	"testing"

	"leadmaster/assets"
)

func TestEmbedded(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		st, err := fs.Stat(assets.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() == 0 {
			t.Errorf("%s is empty", name)
		}
	}
	b, err := fs.ReadFile(assets.FS, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`lang="es"`, `src="app.js"`, `href="style.css"`, `name="viewport"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}
