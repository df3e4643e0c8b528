//go:build !turbojpeg || !cgo

package main

// clientJPEG names the JPEG decoder of the benchmark's client: rfb's, which
// is image/jpeg without the turbojpeg build tag, several times slower than
// what real viewers use, so JPEG-heavy latencies are mostly the client's.
const clientJPEG = "image/jpeg"
