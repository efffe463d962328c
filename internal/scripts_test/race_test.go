//go:build race

package scripts_test

// raceBuild makes the end-to-end test build the daemon as the tests are
// built, so that both share the build cache (and the daemon runs under the
// race detector when the tests do).
const raceBuild = true
