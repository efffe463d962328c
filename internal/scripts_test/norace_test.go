//go:build !race

package scripts_test

// raceBuild: see race_test.go.
const raceBuild = false
