//go:build turbojpeg && cgo

package main

// clientJPEG names the JPEG decoder of the benchmark's client: rfb's, which
// this build links to libjpeg-turbo, like real viewers.
const clientJPEG = "libjpeg-turbo"
