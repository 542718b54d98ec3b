//go:build !linux

package catalog_test

func cpuTime() int64 { return 0 }
