package main

import "time"

// envDuration is v as a duration (time.ParseDuration), or def when v is
// empty or not one.
func envDuration(v string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	return def
}
