package render

// The explore page's browser tests live in package render_test, because
// they serve the investigation API, which imports this package; they
// launch Chromium the way this package's own browser tests do.
var (
	FindChromium = findChromium
	DumpDOM      = dumpDOM
)
