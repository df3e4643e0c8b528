//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "assist-wasm runs in a web browser: build it with GOOS=js GOARCH=wasm (scripts/setup.sh does)")
	os.Exit(2)
}
